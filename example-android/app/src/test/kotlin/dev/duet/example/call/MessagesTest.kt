package dev.duet.example.call

import dev.duet.ActionException
import dev.duet.CallException
import dev.duet.EndReason
import dev.duet.InvalidArgumentKind
import dev.duet.MediaKind
import dev.duet.WrongStateKind
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/** What the user reads for each kind of the SDK's call and action errors. */
class MessagesTest {
    @Test
    fun eachMediaFailureHasItsOwnMessage() {
        val ice = Messages.callFailed(CallException.IceFailed())
        assertTrue(ice, ice.startsWith("No network path") && ice.contains("TURN"))
        val dtls = Messages.callFailed(CallException.DtlsFailed())
        assertTrue(dtls, dtls.contains("encryption"))
        val video = Messages.callFailed(CallException.NoCodec(MediaKind.VIDEO, "openh264 missing"))
        assertTrue(video, video.contains("video codec (openh264 missing)"))
        val audio = Messages.callFailed(CallException.NoCodec(MediaKind.AUDIO, "x"))
        assertTrue(audio, audio.contains("audio codec"))
        val sdp = Messages.callFailed(CallException.BadRemoteDescription("no m= line"))
        assertTrue(sdp, sdp.contains("(no m= line)"))
        val setup = Messages.callFailed(CallException.MediaSetup("no port"))
        assertTrue(setup, setup.contains("(no port)"))
        val all = listOf(ice, dtls, video, sdp, setup)
        assertEquals(all.toString(), all.size, all.toSet().size)
    }

    @Test
    fun actionErrorsReadByKind() {
        assertEquals(
            "You cannot call yourself.",
            Messages.actionFailed(ActionException.InvalidArgument(InvalidArgumentKind.CALLING_YOURSELF, "x")),
        )
        assertTrue(Messages.actionFailed(ActionException.InvalidArgument(InvalidArgumentKind.UID, "uid is empty")).contains("(uid is empty)"))
        assertEquals(
            "Only the person called can answer or decline.",
            Messages.actionFailed(ActionException.InvalidState(WrongStateKind.NOT_THE_CALLEE, "x")),
        )
        // A closed call with its reason is not a sign-out; a client that is gone is.
        assertEquals("The call is already over.", Messages.actionFailed(ActionException.Closed(EndReason.CANCELLED, "x")))
        assertTrue(Messages.actionFailed(ActionException.Closed(EndReason.ANSWERED_ELSEWHERE, "x")).contains("another of your devices"))
        assertTrue(Messages.actionFailed(ActionException.Closed(null, "x")).contains("signed out"))
    }
}
