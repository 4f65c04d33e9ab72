package dev.duet.example

import android.text.InputType
import dev.duet.example.call.CallSession
import dev.duet.example.call.Screen

/**
 * Server URL and uid. The app asks the server for a development token (`duet serve`
 * without a secret hands them out); a real app gets its token from its own backend.
 */
class SignInScreen(activity: MainActivity, session: CallSession, saved: SavedSignIn) : ScreenView {
    private val url = activity.field("Server URL", saved.serverUrl, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI)
    private val uid = activity.field("Your uid (any name, e.g. alice)", saved.uid)
    private val error = activity.notice()
    private val signIn = activity.button("Sign in") {
        if (uid.text.isBlank()) {
            error.say("Choose a uid: it is the name others call you by.")
        } else {
            saved.save(url.text.toString(), uid.text.toString())
            session.signIn(url.text.toString(), uid.text.toString())
        }
    }

    override val root = activity.form(
        activity.title("Duet"),
        activity.label("Sign in to a development server (duet serve)."),
        url,
        uid,
        error,
        signIn,
    )

    override fun shows(state: Screen) = state is Screen.SignIn

    override fun update(state: Screen) {
        state as Screen.SignIn
        error.say(state.error)
        signIn.isEnabled = !state.busy
        signIn.text = if (state.busy) "Signing in…" else if (state.error != null) "Try again" else "Sign in"
    }
}
