package dev.duet.example

import android.app.Activity
import android.graphics.Color
import android.os.Bundle
import android.view.Gravity
import android.view.ViewGroup
import android.view.WindowManager
import android.widget.FrameLayout
import dev.duet.ConnectionState
import dev.duet.example.call.Screen
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * The one activity: shows the screen the call session says ([Screen]), plus a banner while
 * the connection to the server is being re-established. All call logic is in CallSession.
 */
class MainActivity : Activity() {
    /** Lives as long as the activity; screens run their collectors in it. */
    val scope = MainScope()

    private val app get() = application as ExampleApp
    private lateinit var permissions: Permissions
    private lateinit var frame: FrameLayout
    private var current: ScreenView? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        permissions = Permissions(this, app.savedSignIn)
        frame = FrameLayout(this)
        val banner = label().apply {
            setBackgroundColor(Color.rgb(0xFF, 0xD6, 0x00))
            setTextColor(Color.BLACK)
            gravity = Gravity.CENTER
            setPadding(dp(8), dp(8), dp(8), dp(8))
        }
        setContentView(FrameLayout(this).apply {
            addView(frame)
            addView(banner, FrameLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT, Gravity.TOP))
        })
        scope.launch { app.session.screen.collect(::show) }
        scope.launch {
            app.session.connection.collect { state ->
                // Refused is not shown here: the session signs out and the sign-in screen says why.
                banner.say(if (state is ConnectionState.Reconnecting) "Connection to the server lost. Reconnecting…" else null)
            }
        }
    }

    private fun show(state: Screen) {
        val same = current?.takeIf { it.shows(state) }
        if (same != null) {
            same.update(state)
        } else {
            val next = build(state)
            frame.removeAllViews()
            frame.addView(next.root)
            next.update(state)
            // After the next screen took the camera preview, so that the old one does not stop it.
            current?.dispose()
            current = next
        }
        val inCall = state is Screen.Outgoing || state is Screen.Incoming || state is Screen.InCall
        if (inCall) window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        else window.clearFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
    }

    private fun build(state: Screen): ScreenView = when (state) {
        is Screen.SignIn -> SignInScreen(this, app.session, app.savedSignIn)
        is Screen.Home -> HomeScreen(this, app.session, permissions)
        is Screen.Outgoing -> OutgoingCallScreen(this, app.session, app.media)
        is Screen.Incoming -> IncomingCallScreen(this, app.session, permissions)
        is Screen.InCall -> InCallScreen(this, app.session, app.media)
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        (current as? HomeScreen)?.refreshPermissions()
    }

    override fun onResume() {
        super.onResume()
        // Back from the system settings, where the user may have allowed the camera.
        (current as? HomeScreen)?.refreshPermissions()
    }

    override fun onDestroy() {
        current?.dispose()
        current = null
        scope.cancel()
        super.onDestroy()
    }
}
