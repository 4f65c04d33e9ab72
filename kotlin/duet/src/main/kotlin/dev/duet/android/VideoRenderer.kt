package dev.duet.android

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Color
import android.graphics.Matrix
import android.graphics.Paint
import android.graphics.SurfaceTexture
import android.os.Handler
import android.os.HandlerThread
import android.util.AttributeSet
import android.util.Log
import android.view.Surface
import android.view.TextureView
import com.sun.jna.Pointer
import dev.duet.Rotation
import dev.duet.VideoFrame
import dev.duet.VideoSink

/**
 * A view that shows a remote stream: a [TextureView] that is also a [VideoSink].
 *
 * ```kotlin
 * // in ConversationDelegate.didReceiveStream(stream):
 * stream.setVideoSink(remoteView)
 * ```
 *
 * Frames are not copied out of the engine: the renderer keeps the newest `VideoFrame` object
 * (its bytes are valid while it is alive) and converts straight from its memory on the
 * renderer's own thread, then closes it. The decoder's copy into the frame is the only one
 * on the way to the screen. The render thread always takes the newest frame and closes the
 * ones it had no time for unread, so a slow screen never holds up the call's media, and at
 * most two frames (the one drawn, the one waiting) are held.
 *
 * Sample grade: it converts I420 to ARGB on the CPU ([I420ToArgb]) into a [Bitmap] and draws
 * that on a Canvas, which is fine at 640x480 and costly at 720p and above. The next step is
 * a GL renderer: upload the Y, U and V planes as three `GL_LUMINANCE` textures and convert
 * in a fragment shader (or hand NV12/I420 to a `SurfaceTexture`-backed decoder path).
 */
class VideoRenderer @JvmOverloads constructor(
    context: Context,
    attrs: AttributeSet? = null,
) : TextureView(context, attrs), VideoSink, TextureView.SurfaceTextureListener {

    enum class ScaleMode {
        /** The whole picture, letterboxed. */
        FIT,
        /** The view filled, the picture cropped. */
        FILL,
    }

    /** Mirror the picture left to right (what users expect of their own front camera). */
    @Volatile
    var mirror: Boolean = false

    @Volatile
    var scaleMode: ScaleMode = ScaleMode.FIT

    /** Frames drawn so far. */
    @Volatile
    var framesRendered: Long = 0
        private set

    /** A frame waiting to be drawn, or being drawn; whoever takes it closes it. */
    private class Picture(val frame: VideoFrame, val width: Int, val height: Int, val rotation: Int)

    private val renderThread = HandlerThread("duet-render").apply { start() }
    private val renderHandler = Handler(renderThread.looper)
    private val lock = Any()

    // Guarded by [lock].
    private var ready: Picture? = null
    private var drawScheduled = false
    private var released = false

    // Touched only on the render thread.
    private var surface: Surface? = null
    private var surfaceWidth = 0
    private var surfaceHeight = 0
    private var bitmap: Bitmap? = null
    private var argb = IntArray(0)
    private val matrix = Matrix()
    private val paint = Paint(Paint.FILTER_BITMAP_FLAG)

    init {
        surfaceTextureListener = this
        isOpaque = true
    }

    // VideoSink: called on a media thread. Nothing is copied here: the frame is kept.
    override fun onVideoFrame(frame: VideoFrame) {
        val picture = Picture(frame, frame.width().toInt(), frame.height().toInt(), degrees(frame.rotation()))
        val dropped = synchronized(lock) {
            if (released) return@synchronized picture
            val older = ready
            ready = picture
            if (!drawScheduled) {
                drawScheduled = true
                renderHandler.post(drawLatest)
            }
            older
        }
        dropped?.frame?.close()
    }

    private val drawLatest = Runnable {
        val picture = synchronized(lock) {
            drawScheduled = false
            ready.also { ready = null }
        } ?: return@Runnable
        try {
            draw(picture)
        } catch (e: Exception) {
            Log.w("Duet", "could not draw a frame: $e")
        } finally {
            picture.frame.close()
        }
    }

    private fun draw(picture: Picture) {
        val target = surface ?: return
        val (w, h) = picture.width to picture.height
        if (argb.size != w * h) argb = IntArray(w * h)
        // The frame's own bytes, valid until the close() after this draw.
        val bytes = Pointer(picture.frame.dataAddress().toLong()).getByteBuffer(0, picture.frame.dataLen().toLong())
        I420ToArgb.convert(bytes, w, h, argb)
        val bmp = bitmap?.takeIf { it.width == w && it.height == h }
            ?: Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888).also { bitmap?.recycle(); bitmap = it }
        bmp.setPixels(argb, 0, w, 0, 0, w, h)

        // Rotate about the picture's centre, scale to the surface, centre, mirror.
        val quarterTurn = picture.rotation == 90 || picture.rotation == 270
        val shownW = if (quarterTurn) h else w
        val shownH = if (quarterTurn) w else h
        val sx = surfaceWidth.toFloat() / shownW
        val sy = surfaceHeight.toFloat() / shownH
        val scale = if (scaleMode == ScaleMode.FIT) minOf(sx, sy) else maxOf(sx, sy)
        matrix.reset()
        matrix.postTranslate(-w / 2f, -h / 2f)
        matrix.postRotate(picture.rotation.toFloat())
        matrix.postScale(if (mirror) -scale else scale, scale)
        matrix.postTranslate(surfaceWidth / 2f, surfaceHeight / 2f)

        val canvas = target.lockCanvas(null)
        try {
            canvas.drawColor(Color.BLACK)
            canvas.drawBitmap(bmp, matrix, paint)
        } finally {
            target.unlockCanvasAndPost(canvas)
        }
        framesRendered++
    }

    // SurfaceTextureListener: called on the UI thread; the surface is used on the render thread.
    override fun onSurfaceTextureAvailable(texture: SurfaceTexture, width: Int, height: Int) {
        renderHandler.post {
            surface = Surface(texture)
            surfaceWidth = width
            surfaceHeight = height
        }
    }

    override fun onSurfaceTextureSizeChanged(texture: SurfaceTexture, width: Int, height: Int) {
        renderHandler.post { surfaceWidth = width; surfaceHeight = height }
    }

    override fun onSurfaceTextureDestroyed(texture: SurfaceTexture): Boolean {
        // Returning false: the texture is released here, on the render thread, after the
        // last draw into it. After release() that thread is gone: the view releases it.
        val posted = renderHandler.post {
            surface?.release()
            surface = null
            texture.release()
        }
        return !posted
    }

    override fun onSurfaceTextureUpdated(texture: SurfaceTexture) {}

    /**
     * Ends the render thread. Detach the renderer from its stream first
     * (`stream.setVideoSink(null)`); frames that still arrive are dropped.
     */
    fun release() {
        val waiting = synchronized(lock) {
            released = true
            ready.also { ready = null }
        }
        waiting?.frame?.close()
        renderHandler.post {
            bitmap?.recycle()
            bitmap = null
        }
        renderThread.quitSafely()
    }

    private companion object {
        fun degrees(rotation: Rotation): Int = when (rotation) {
            Rotation.DEG0 -> 0
            Rotation.DEG90 -> 90
            Rotation.DEG180 -> 180
            Rotation.DEG270 -> 270
        }
    }
}
