package dev.duet.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Person
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.os.Build

/**
 * The incoming call's notification: call style (answer and decline buttons) with a
 * full-screen intent, which rings over the lock screen. On Android 14 the full-screen
 * intent needs the user's grant ([NotificationManager.canUseFullScreenIntent]); without it
 * the call rings as a heads-up notification, and [fullScreenAllowed] tells the app to ask
 * (Settings.ACTION_MANAGE_APP_USE_FULL_SCREEN_INTENT).
 *
 * The app sets [fullScreenActivity]: the activity that shows the ringing call (it answers
 * through the same [DuetTelecom.connections] path as the buttons).
 */
object CallNotifications {
    private const val CHANNEL = "duet_incoming_calls"
    internal const val ACTION_ANSWER = "dev.duet.action.ANSWER"
    internal const val ACTION_DECLINE = "dev.duet.action.DECLINE"

    @Volatile
    var fullScreenActivity: Class<*>? = null

    fun fullScreenAllowed(context: Context): Boolean =
        Build.VERSION.SDK_INT < 34 || context.getSystemService(NotificationManager::class.java).canUseFullScreenIntent()

    internal fun showIncoming(context: Context, id: String, caller: String) {
        val manager = context.getSystemService(NotificationManager::class.java)
        if (Build.VERSION.SDK_INT >= 26) {
            manager.createNotificationChannel(
                NotificationChannel(CHANNEL, "Incoming calls", NotificationManager.IMPORTANCE_HIGH),
            )
        }
        manager.notify(id.hashCode(), incoming(context, id, caller))
    }

    internal fun cancel(context: Context, id: String) {
        context.getSystemService(NotificationManager::class.java).cancel(id.hashCode())
    }

    @Suppress("DEPRECATION")
    private fun incoming(context: Context, id: String, caller: String): Notification {
        val answer = action(context, ACTION_ANSWER, id)
        val decline = action(context, ACTION_DECLINE, id)
        val builder = if (Build.VERSION.SDK_INT >= 26) Notification.Builder(context, CHANNEL) else Notification.Builder(context)
        builder.setSmallIcon(android.R.drawable.sym_call_incoming)
            .setContentTitle(caller)
            .setContentText("Incoming video call")
            .setCategory(Notification.CATEGORY_CALL)
            .setOngoing(true)
            .setAutoCancel(false)
        if (Build.VERSION.SDK_INT >= 31) {
            val person = Person.Builder().setName(caller).setImportant(true).build()
            builder.setStyle(Notification.CallStyle.forIncomingCall(person, decline, answer))
        } else {
            builder.addAction(Notification.Action.Builder(null, "Decline", decline).build())
            builder.addAction(Notification.Action.Builder(null, "Answer", answer).build())
        }
        val activity = fullScreenActivity
        if (activity != null && fullScreenAllowed(context)) {
            val show = Intent(context, activity).putExtra(DuetTelecom.EXTRA_ID, id).putExtra(DuetTelecom.EXTRA_PEER, caller)
                .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
            builder.setFullScreenIntent(PendingIntent.getActivity(context, id.hashCode(), show, flags()), true)
        }
        return builder.build()
    }

    private fun action(context: Context, action: String, id: String): PendingIntent {
        val intent = Intent(context, CallActionReceiver::class.java).setAction(action).putExtra(DuetTelecom.EXTRA_ID, id)
        return PendingIntent.getBroadcast(context, (action + id).hashCode(), intent, flags())
    }

    private fun flags() = PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_IMMUTABLE
}

/** The notification's answer and decline buttons (declared in the library's manifest). */
class CallActionReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val id = intent.getStringExtra(DuetTelecom.EXTRA_ID) ?: return
        answerOrDecline(id, answer = intent.action == CallNotifications.ACTION_ANSWER)
    }

    companion object {
        /** For the app's own ringing UI too: goes through Telecom when the call is there. */
        fun answerOrDecline(id: String, answer: Boolean) {
            val connection = DuetTelecom.connections[id]
            when {
                connection != null && answer -> connection.onAnswer()
                connection != null -> connection.onReject()
                answer -> DuetTelecom.center?.answer(id)
                else -> DuetTelecom.center?.end(id)
            }
        }
    }
}
