package dev.duet.example

import android.graphics.Color
import dev.duet.example.call.CallSession
import dev.duet.example.call.Screen

/** Who you are, whom to call, and custom data sent with the call. */
class HomeScreen(activity: MainActivity, private val session: CallSession, private val permissions: Permissions) : ScreenView {
    private val me = activity.title("")
    private val callee = activity.field("uid to call")
    private val data = activity.field("Custom data sent with the call (optional)")
    private val notice = activity.notice()
    private val error = activity.notice()
    private val media = activity.notice(color = Color.DKGRAY)
    private val allow = activity.button("Allow camera and microphone") { permissions.ask() }

    override val root = activity.form(
        me,
        activity.label("Waiting for calls. To call someone, enter their uid."),
        callee,
        data,
        error,
        activity.button("Call") {
            if (callee.text.isBlank()) error.say("Enter the uid of the person to call.")
            else session.call(callee.text.toString(), data.text.toString())
        },
        notice,
        media,
        allow,
        activity.button("Sign out") { session.signOut() },
    )

    init {
        permissions.askOnce()
    }

    override fun shows(state: Screen) = state is Screen.Home

    override fun update(state: Screen) {
        state as Screen.Home
        me.text = "You are ${state.uid}"
        if (callee.text.isEmpty()) callee.setText(state.callee)
        if (data.text.isEmpty()) data.setText(state.data)
        error.say(null)
        notice.say(state.notice)
        refreshPermissions()
    }

    /** Also called when the user answered the permission prompt. */
    fun refreshPermissions() {
        val explanation = permissions.explanation()
        media.say(explanation)
        allow.visibility = media.visibility
    }
}
