package dev.duet.android

import android.annotation.SuppressLint
import android.content.Context
import android.graphics.ImageFormat
import android.graphics.Matrix
import android.graphics.SurfaceTexture
import android.hardware.camera2.CameraAccessException
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.hardware.camera2.CaptureRequest
import android.hardware.display.DisplayManager
import android.media.ImageReader
import android.os.Handler
import android.os.HandlerThread
import android.util.Log
import android.util.Range
import android.util.Size
import android.view.Display
import android.view.Surface
import android.view.TextureView
import dev.duet.LocalStream

/**
 * Feeds a [LocalStream] from a Camera2 camera: an [ImageReader] in `YUV_420_888`, each
 * image's planes pushed with their strides (NV12 when U and V interleave U-first, I420
 * otherwise; see [Yuv420Pusher]) straight from the camera's direct buffers, stamped with
 * the image's timestamp and the rotation that turns it upright on this device's display.
 *
 * ```kotlin
 * val camera = CameraCapturer(context, localStream, CameraCapturer.Facing.FRONT)
 * camera.start()          // after the CAMERA permission is granted
 * camera.setPreview(textureView)   // what the camera sees, on this screen
 * camera.switchCamera()   // front <-> back
 * camera.stop()
 * ```
 *
 * Everything runs on the capturer's own thread; the methods may be called from any thread.
 * Errors are reported to [onError] (on that thread) and in logcat (tag `Duet`).
 */
class CameraCapturer(
    context: Context,
    private val stream: LocalStream,
    facing: Facing = Facing.FRONT,
    /** The picture size asked for; the nearest size the camera offers is used. */
    private val width: Int = 640,
    private val height: Int = 480,
    private val fps: Int = 30,
) {
    enum class Facing { FRONT, BACK }

    /** Hears camera errors (no camera with that facing, disconnected, session failed). */
    @Volatile
    var onError: ((String) -> Unit)? = null

    /** The camera in use, or to be used by the next [start]. */
    @Volatile
    var facing: Facing = facing
        private set

    private val appContext = context.applicationContext
    private val cameraManager = appContext.getSystemService(Context.CAMERA_SERVICE) as CameraManager
    private val display: Display? =
        (appContext.getSystemService(Context.DISPLAY_SERVICE) as DisplayManager).getDisplay(Display.DEFAULT_DISPLAY)

    private val thread = HandlerThread("duet-camera").apply { start() }
    private val handler = Handler(thread.looper)
    private val pusher = Yuv420Pusher()

    // Touched only on [thread].
    private var running = false
    private var device: CameraDevice? = null
    private var session: CameraCaptureSession? = null
    private var reader: ImageReader? = null
    @Volatile private var sensorOrientation = 0 // also read on the main thread, by fitPreview
    private var loggedLayout = false
    private var fpsRange: Range<Int>? = null
    private var sessionAttempt = 0
    private var previewTexture: SurfaceTexture? = null
    private var previewSurface: Surface? = null

    /** The size the camera delivers; read on the main thread to fit the preview. */
    @Volatile private var captureSize: Size? = null

    // Set on the main thread; read on [thread] too.
    @Volatile private var previewView: TextureView? = null

    /**
     * Opens the camera and starts pushing frames. Call it once the app holds the CAMERA
     * permission; without it [onError] hears "no CAMERA permission".
     */
    fun start() {
        handler.post { if (!running) { running = true; open() } }
    }

    /** Stops capture and closes the camera; [start] opens it again. */
    fun stop() {
        handler.post { running = false; closeCamera() }
    }

    /** Switches between the front and back cameras, keeping capture on if it was. */
    fun switchCamera() {
        handler.post {
            facing = if (facing == Facing.FRONT) Facing.BACK else Facing.FRONT
            if (running) { closeCamera(); open() }
        }
    }

    /**
     * Shows what the camera sees in [view] (null: nowhere), upright, cropped to fill the view,
     * mirrored for the front camera as the platform does for camera previews. The camera
     * draws into the view's texture as a second output of its capture session, so the
     * preview costs no copy or conversion; setting it restarts the session, a brief gap in
     * the frames sent. Takes over the view's [TextureView.SurfaceTextureListener]. Call on
     * the main thread.
     */
    fun setPreview(view: TextureView?) {
        if (view === previewView) return
        previewView = view
        if (view == null) {
            handler.post { usePreview(null) }
            return
        }
        view.surfaceTextureListener = PreviewListener(view)
        val texture = view.surfaceTexture
        if (view.isAvailable && texture != null) {
            handler.post { usePreview(texture) }
            fitPreview(view)
        }
    }

    /** Stops capture and ends the capturer's thread; the capturer cannot be used again. */
    fun release() {
        handler.post {
            running = false
            closeCamera()
            previewSurface?.release()
            previewSurface = null
            previewTexture = null
            thread.quitSafely()
        }
    }

    // One per view, so that a view that was replaced and later loses its texture does not
    // take the preview away from the view that replaced it.
    private inner class PreviewListener(private val view: TextureView) : TextureView.SurfaceTextureListener {
        override fun onSurfaceTextureAvailable(texture: SurfaceTexture, width: Int, height: Int) {
            if (previewView !== view) return
            handler.post { usePreview(texture) }
            fitPreview(view)
        }

        override fun onSurfaceTextureSizeChanged(texture: SurfaceTexture, width: Int, height: Int) {
            if (previewView === view) fitPreview(view)
        }

        override fun onSurfaceTextureDestroyed(texture: SurfaceTexture): Boolean {
            // Released on the camera thread once the session no longer draws into it:
            // releasing it here, first, would abandon a surface the camera still writes to.
            // After release() the thread is gone, and so is the camera: the view releases it.
            val posted = handler.post {
                if (previewTexture === texture) usePreview(null)
                texture.release()
            }
            return !posted
        }

        override fun onSurfaceTextureUpdated(texture: SurfaceTexture) {}
    }

    /** On [thread]: draws the preview into [texture] from now on, restarting the session. */
    private fun usePreview(texture: SurfaceTexture?) {
        if (texture === previewTexture) return
        previewTexture = texture
        val camera = device ?: return // not open yet: onOpened starts the session with it
        val imageReader = reader ?: return
        session?.close()
        session = null
        startSession(camera, imageReader, fpsRange)
    }

    /**
     * On the main thread: the view's transform that makes the camera's picture fill it. The
     * texture arrives upright for the device's natural orientation (the camera service
     * rotates and mirrors preview buffers) and stretched to the view; undo the stretch,
     * turn it against the display's rotation, then scale it to cover the view.
     */
    private fun fitPreview(view: TextureView) {
        val size = captureSize ?: return
        val viewW = view.width.toFloat()
        val viewH = view.height.toFloat()
        if (viewW == 0f || viewH == 0f) return
        val sideways = sensorOrientation % 180 == 90
        val contentW = (if (sideways) size.height else size.width).toFloat()
        val contentH = (if (sideways) size.width else size.height).toFloat()
        val displayDegrees = when (view.display?.rotation ?: Surface.ROTATION_0) {
            Surface.ROTATION_90 -> 90
            Surface.ROTATION_180 -> 180
            Surface.ROTATION_270 -> 270
            else -> 0
        }
        val shownW = if (displayDegrees % 180 == 90) contentH else contentW
        val shownH = if (displayDegrees % 180 == 90) contentW else contentH
        val scale = maxOf(viewW / shownW, viewH / shownH)
        val cx = viewW / 2
        val cy = viewH / 2
        view.setTransform(Matrix().apply {
            postScale(contentW / viewW, contentH / viewH, cx, cy)
            postRotate(-displayDegrees.toFloat(), cx, cy)
            postScale(scale, scale, cx, cy)
        })
    }

    @SuppressLint("MissingPermission") // start() asks its caller for it; refused, it is reported.
    private fun open() {
        val id: String
        val size: Size
        try {
            id = cameraId(facing) ?: return fail("no ${facing.name.lowercase()} camera")
            val characteristics = cameraManager.getCameraCharacteristics(id)
            sensorOrientation = characteristics.get(CameraCharacteristics.SENSOR_ORIENTATION) ?: 0
            val sizes = characteristics.get(CameraCharacteristics.SCALER_STREAM_CONFIGURATION_MAP)
                ?.getOutputSizes(ImageFormat.YUV_420_888).orEmpty()
            size = sizes.minByOrNull { Math.abs(it.width * it.height - width * height) } ?: Size(width, height)
            // A range that ends at the frame rate asked for, as wide as there is (the camera
            // may slow down in low light rather than go dark), else the nearest above it.
            val ranges = characteristics.get(CameraCharacteristics.CONTROL_AE_AVAILABLE_TARGET_FPS_RANGES).orEmpty()
            fpsRange = ranges.filter { it.upper == fps }.minByOrNull { it.lower }
                ?: ranges.filter { it.upper >= fps }.minByOrNull { it.upper }
        } catch (e: CameraAccessException) {
            return fail("cannot read the cameras: ${e.message}")
        } catch (e: IllegalArgumentException) {
            return fail("cannot read the cameras: ${e.message}")
        }

        captureSize = size
        // Front and back cameras may differ in size and orientation: refit the preview.
        previewView?.let { view -> view.post { if (previewView === view) fitPreview(view) } }
        val imageReader = ImageReader.newInstance(size.width, size.height, ImageFormat.YUV_420_888, 3)
        imageReader.setOnImageAvailableListener({ r -> onImage(r) }, handler)
        reader = imageReader
        loggedLayout = false
        try {
            cameraManager.openCamera(id, object : CameraDevice.StateCallback() {
                override fun onOpened(camera: CameraDevice) {
                    if (!running || reader !== imageReader) { camera.close(); return }
                    device = camera
                    startSession(camera, imageReader, fpsRange)
                }

                override fun onDisconnected(camera: CameraDevice) {
                    camera.close()
                    if (device === camera) { device = null; fail("camera disconnected") }
                }

                override fun onError(camera: CameraDevice, error: Int) {
                    camera.close()
                    if (device === camera) device = null
                    fail("camera error $error")
                }
            }, handler)
        } catch (e: CameraAccessException) {
            fail("cannot open camera $id: ${e.message}")
        } catch (e: SecurityException) {
            fail("no CAMERA permission")
        }
    }

    @Suppress("DEPRECATION") // The List<Surface> form is the one API 24 has.
    private fun startSession(camera: CameraDevice, imageReader: ImageReader, fpsRange: Range<Int>?) {
        val attempt = ++sessionAttempt
        previewSurface?.release()
        previewSurface = previewTexture?.let { texture ->
            captureSize?.let { texture.setDefaultBufferSize(it.width, it.height) }
            Surface(texture)
        }
        val preview = previewSurface
        val outputs = listOfNotNull(imageReader.surface, preview)
        try {
            camera.createCaptureSession(outputs, object : CameraCaptureSession.StateCallback() {
                override fun onConfigured(s: CameraCaptureSession) {
                    // A newer attempt (the preview changed meanwhile) or a closed camera.
                    if (device !== camera || attempt != sessionAttempt) { s.close(); return }
                    session = s
                    val request = camera.createCaptureRequest(CameraDevice.TEMPLATE_RECORD).apply {
                        addTarget(imageReader.surface)
                        if (preview != null) addTarget(preview)
                        if (fpsRange != null) set(CaptureRequest.CONTROL_AE_TARGET_FPS_RANGE, fpsRange)
                    }
                    try {
                        s.setRepeatingRequest(request.build(), null, handler)
                    } catch (e: CameraAccessException) {
                        fail("cannot start capture: ${e.message}")
                    } catch (e: IllegalStateException) {
                        fail("cannot start capture: ${e.message}")
                    }
                }

                override fun onConfigureFailed(s: CameraCaptureSession) {
                    if (attempt == sessionAttempt) fail("capture session configuration failed")
                }
            }, handler)
        } catch (e: CameraAccessException) {
            fail("cannot create capture session: ${e.message}")
        }
    }

    private fun onImage(imageReader: ImageReader) {
        val image = imageReader.acquireLatestImage() ?: return
        try {
            if (!running) return
            val planes = image.planes
            val y = planes[0]
            val u = planes[1]
            val v = planes[2]
            // The buffers are the camera's own memory, valid until image.close(): the engine
            // borrows them for the push and copies once into its frame.
            val layout = pusher.push(
                stream, image.width, image.height,
                y.buffer, y.rowStride,
                u.buffer, u.rowStride, u.pixelStride,
                v.buffer, v.rowStride, v.pixelStride,
                image.timestamp / 1000, // ns -> us
                Yuv420Pusher.rotation(rotationDegrees()),
            )
            if (!loggedLayout) {
                loggedLayout = true
                Log.i(TAG, "camera ${image.width}x${image.height}, chroma $layout, sensor $sensorOrientation°")
            }
        } catch (e: Exception) {
            Log.w(TAG, "dropped a camera frame: $e")
        } finally {
            image.close()
        }
    }

    /** Clockwise degrees that turn the sensor's picture upright on the display as it is now held. */
    private fun rotationDegrees(): Int {
        val device = when (display?.rotation ?: Surface.ROTATION_0) {
            Surface.ROTATION_90 -> 90
            Surface.ROTATION_180 -> 180
            Surface.ROTATION_270 -> 270
            else -> 0
        }
        // The front camera faces the user, so the device's turn adds to the sensor's.
        return if (facing == Facing.FRONT) (sensorOrientation + device) % 360
        else (sensorOrientation - device + 360) % 360
    }

    private fun cameraId(facing: Facing): String? {
        val lens = if (facing == Facing.FRONT) CameraCharacteristics.LENS_FACING_FRONT
        else CameraCharacteristics.LENS_FACING_BACK
        return cameraManager.cameraIdList.firstOrNull {
            cameraManager.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) == lens
        }
    }

    private fun closeCamera() {
        session?.close(); session = null
        device?.close(); device = null
        reader?.close(); reader = null
    }

    private fun fail(message: String) {
        Log.e(TAG, message)
        onError?.invoke(message)
    }

    private companion object {
        const val TAG = "Duet"
    }
}
