package dev.duet.example

import android.content.Context
import android.graphics.Color
import android.text.InputType
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import kotlin.math.roundToInt

// Views are built in code rather than XML layouts: no generated R class, so every line of
// the UI is type-checked with the rest (scripts/test-kotlin), and each screen reads top to
// bottom in one file.

fun Context.dp(value: Int): Int = (value * resources.displayMetrics.density).roundToInt()

/** A padded vertical form, scrollable so the keyboard never hides its buttons. */
fun Context.form(vararg children: View): View = ScrollView(this).apply {
    addView(column(*children).apply { setPadding(dp(24), dp(32), dp(24), dp(24)) })
}

fun Context.column(vararg children: View): LinearLayout = LinearLayout(this).apply {
    orientation = LinearLayout.VERTICAL
    children.forEach { addView(it, LinearLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT).apply { topMargin = dp(8) }) }
}

/** Buttons side by side, sharing the width. */
fun Context.row(vararg children: View): LinearLayout = LinearLayout(this).apply {
    orientation = LinearLayout.HORIZONTAL
    gravity = Gravity.CENTER
    children.forEach { addView(it, LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f)) }
}

fun Context.title(text: String): TextView = label(text, size = 24f)

fun Context.label(text: String = "", size: Float = 16f): TextView = TextView(this).apply {
    this.text = text
    textSize = size
}

/** A line that only shows when there is something to say. */
fun Context.notice(color: Int = Color.rgb(0xB0, 0x00, 0x20)): TextView = label().apply {
    setTextColor(color)
    visibility = View.GONE
}

fun TextView.say(message: String?) {
    text = message ?: ""
    visibility = if (message.isNullOrEmpty()) View.GONE else View.VISIBLE
}

fun Context.field(hint: String, value: String = "", type: Int = InputType.TYPE_CLASS_TEXT): EditText = EditText(this).apply {
    this.hint = hint
    setText(value)
    inputType = type
    isSingleLine = true
}

fun Context.button(text: String, onClick: () -> Unit): Button = Button(this).apply {
    this.text = text
    setOnClickListener { onClick() }
}
