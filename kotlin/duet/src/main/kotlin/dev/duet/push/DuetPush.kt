package dev.duet.push

/**
 * A Duet push as FCM delivers it: a data-only message whose `data` map is `duet_call_id`,
 * `duet_from`, `duet_deadline_ms`, `duet_data` and `duet_data_truncated`
 * (docs/protocol.md, "What a push says").
 */
data class DuetPushMessage(
    val callId: String,
    val caller: String,
    /** When the call stops ringing, in milliseconds since the Unix epoch. */
    val deadlineMs: Long,
    /** The invite's custom data, cut to fit when [dataTruncated] (the incoming call has it whole). */
    val data: String?,
    val dataTruncated: Boolean,
) {
    companion object {
        /** Null for a message that is not a Duet call (another sender's, or malformed). */
        fun parse(data: Map<String, String>): DuetPushMessage? {
            val callId = data["duet_call_id"]?.takeIf { it.isNotEmpty() } ?: return null
            val caller = data["duet_from"]?.takeIf { it.isNotEmpty() } ?: return null
            val deadline = data["duet_deadline_ms"]?.toLongOrNull() ?: return null
            return DuetPushMessage(callId, caller, deadline, data["duet_data"], data["duet_data_truncated"] == "true")
        }
    }
}

/**
 * The entry point for pushes, so that the library needs no Firebase: the app's own
 * `FirebaseMessagingService.onMessageReceived(message)` calls
 * `DuetPush.handleMessage(message.data)`, and `onNewToken(token)` hands the token to
 * `VideoCall.registerPush(PushToken.Fcm(token))`.
 */
object DuetPush {
    @Volatile
    private var center: DuetCallCenter? = null

    /** The center that rings for pushes; set it at app start (Application.onCreate). */
    fun install(center: DuetCallCenter?) {
        this.center = center
    }

    /** True if [data] was a Duet call, now on the call screen; false for anyone else's message. */
    fun handleMessage(data: Map<String, String>): Boolean {
        val message = DuetPushMessage.parse(data) ?: return false
        return center?.handlePush(message) ?: false
    }
}
