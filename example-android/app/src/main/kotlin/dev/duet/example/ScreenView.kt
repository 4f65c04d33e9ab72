package dev.duet.example

import android.view.View
import dev.duet.example.call.Screen

/**
 * One screen on the display: built for the first state of its kind, then [update]d with
 * each new state of that kind, then [dispose]d when another kind of screen replaces it.
 */
interface ScreenView {
    val root: View

    /** Whether [state] is drawn by this screen (else MainActivity builds the right one). */
    fun shows(state: Screen): Boolean

    fun update(state: Screen)

    /** Lets go of what the screen holds (video sinks, the camera preview, coroutines). */
    fun dispose() {}
}
