package dev.duet.push

import dev.duet.Conversation
import dev.duet.LocalStream
import dev.duet.RemoteStream

// The system call screen as the push logic sees it. Android's Telecom implements it
// (dev.duet.android.TelecomCallScreen); tests implement it with a recorder, so the logic
// runs on the JVM against a real server.

/** Why a call screen closes (Telecom's DisconnectCause; a call not answered here is missed). */
enum class CallScreenEndReason {
    /** The other party hung up, or the caller gave up while it rang. */
    REMOTE_ENDED,
    /** Nobody answered before the ring timeout. */
    UNANSWERED,
    ANSWERED_ELSEWHERE,
    DECLINED_ELSEWHERE,
    /** The call could not be set up (server unreachable). */
    FAILED,
}

/**
 * What the push logic tells the call screen. [reportIncoming] comes synchronously from
 * [DuetCallCenter.handlePush]; the rest from the center's own thread.
 */
interface CallScreen {
    fun reportIncoming(id: String, caller: String, hasVideo: Boolean)
    fun reportOutgoingStarted(id: String, callee: String)
    fun reportOutgoingConnected(id: String)
    fun reportEnded(id: String, reason: CallScreenEndReason)
}

/** The call's audio, which the app runs; started only once the call's audio is active. */
interface CallAudio {
    /** The call's audio is active: start the microphone. */
    fun start(call: CallHandle)
    /** Play [remote] (after [start], once the other side's media is there). */
    fun play(call: CallHandle, remote: RemoteStream)
    fun stop(call: CallHandle)
}

/** What an app needs of a call to show it and run its media. [id] is the screen's id. */
class CallHandle(val id: String, val conversation: Conversation, val localStream: LocalStream)
