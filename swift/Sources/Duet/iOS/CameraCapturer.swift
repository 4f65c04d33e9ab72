#if os(iOS)
import AVFoundation
import CoreMedia
import CoreVideo
import UIKit

/// Feeds a `LocalStream` from the front or back camera.
///
/// The camera delivers NV12 (`kCVPixelFormatType_420YpCbCr8BiPlanarFullRange`) pixel
/// buffers; each is pushed with `LocalStream.pushNv12` straight from the locked buffer (the
/// engine borrows the planes for the call and makes its one copy). Buffers keep the
/// sensor's orientation; the rotation that shows them upright goes with each frame, and
/// the engine turns the picture before encoding.
///
/// The app asks for camera permission (`NSCameraUsageDescription`,
/// `AVCaptureDevice.requestAccess(for: .video)`) before `start()`.
public final class CameraCapturer: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    public enum Position: Sendable {
        case front
        case back
    }

    public enum Failure: Error {
        case noCamera(Position)
        /// The session cannot take this camera (named), e.g. another app holds it.
        case cannotUse(String)
        case cannotAddOutput
    }

    public let stream: LocalStream
    public let session = AVCaptureSession()

    private let output = AVCaptureVideoDataOutput()
    private let sessionQueue = DispatchQueue(label: "dev.duet.camera.session")
    private let frameQueue = DispatchQueue(label: "dev.duet.camera.frames", qos: .userInteractive)
    private var input: AVCaptureDeviceInput?
    private var orientation: OrientationTracker?
    private let state = NSLock()
    private var _position: Position
    private var _rotation: Rotation = .deg90

    public init(stream: LocalStream, position: Position = .front) {
        self.stream = stream
        self._position = position
        super.init()
    }

    /// The camera in use.
    public var position: Position {
        state.lock(); defer { state.unlock() }
        return _position
    }

    /// Configures the session for the stream's constraints and starts capturing (in the
    /// background: starting a camera takes a while). Throws if there is no such camera or
    /// it cannot be used.
    public func start() throws {
        try sessionQueue.sync {
            if input == nil { try configure(position: position) }
        }
        sessionQueue.async { [session] in
            if !session.isRunning { session.startRunning() }
        }
    }

    public func stop() {
        sessionQueue.async { [session] in
            if session.isRunning { session.stopRunning() }
        }
    }

    /// Switches between the front and back cameras, keeping the session running.
    public func switchCamera() throws {
        try use(position == .front ? .back : .front)
    }

    public func use(_ position: Position) throws {
        try sessionQueue.sync { try configure(position: position) }
    }

    /// A layer showing what the camera sees, for a local preview.
    public func makePreviewLayer() -> AVCaptureVideoPreviewLayer {
        let layer = AVCaptureVideoPreviewLayer(session: session)
        layer.videoGravity = .resizeAspectFill
        return layer
    }

    // MARK: - Session (on sessionQueue)

    private func configure(position: Position) throws {
        let avPosition: AVCaptureDevice.Position = position == .front ? .front : .back
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: avPosition) else {
            throw Failure.noCamera(position)
        }
        let newInput = try AVCaptureDeviceInput(device: device)

        session.beginConfiguration()
        defer { session.commitConfiguration() }

        if let input { session.removeInput(input) }
        guard session.canAddInput(newInput) else {
            if let input { session.addInput(input) }
            throw Failure.cannotUse(device.localizedName)
        }
        session.addInput(newInput)
        input = newInput

        if !session.outputs.contains(output) {
            output.videoSettings = [
                kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange,
            ]
            output.alwaysDiscardsLateVideoFrames = true
            output.setSampleBufferDelegate(self, queue: frameQueue)
            guard session.canAddOutput(output) else { throw Failure.cannotAddOutput }
            session.addOutput(output)
        }

        let video = stream.constraints().video
        let preset = Self.preset(width: Int(video?.width ?? 640), height: Int(video?.height ?? 480))
        if session.canSetSessionPreset(preset) { session.sessionPreset = preset }
        Self.limitFrameRate(of: device, to: Double(video?.fps ?? 30))

        // Leave the buffers in sensor orientation (no rotation work in the capture
        // pipeline); the rotation is sent with each frame instead.
        if let connection = output.connection(with: .video), connection.isVideoMirroringSupported {
            connection.automaticallyAdjustsVideoMirroring = false
            connection.isVideoMirrored = false
        }

        orientation = OrientationTracker(device: device, front: position == .front) { [weak self] rotation in
            self?.setRotation(rotation)
        }
        state.lock()
        _position = position
        state.unlock()
    }

    private static func preset(width: Int, height: Int) -> AVCaptureSession.Preset {
        let pixels = width * height
        if pixels >= 1920 * 1080 { return .hd1920x1080 }
        if pixels >= 1280 * 720 { return .hd1280x720 }
        if pixels >= 640 * 480 { return .vga640x480 }
        return .cif352x288
    }

    private static func limitFrameRate(of device: AVCaptureDevice, to fps: Double) {
        guard fps > 0,
              device.activeFormat.videoSupportedFrameRateRanges.contains(where: {
                  $0.minFrameRate <= fps && fps <= $0.maxFrameRate
              }),
              (try? device.lockForConfiguration()) != nil
        else { return }
        let duration = CMTime(value: 1, timescale: CMTimeScale(fps.rounded()))
        device.activeVideoMinFrameDuration = duration
        device.activeVideoMaxFrameDuration = duration
        device.unlockForConfiguration()
    }

    private func setRotation(_ rotation: Rotation) {
        state.lock()
        _rotation = rotation
        state.unlock()
    }

    private var rotation: Rotation {
        state.lock(); defer { state.unlock() }
        return _rotation
    }

    // MARK: - Frames (on frameQueue)

    public func captureOutput(
        _ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection
    ) {
        guard let pixelBuffer = CMSampleBufferGetImageBuffer(sampleBuffer),
              CVPixelBufferGetPlaneCount(pixelBuffer) == 2
        else { return }
        let timestamp = CMSampleBufferGetPresentationTimeStamp(sampleBuffer)
        let seconds = CMTimeGetSeconds(timestamp)
        let timestampUs = seconds.isFinite && seconds > 0 ? UInt64(seconds * 1_000_000) : 0

        CVPixelBufferLockBaseAddress(pixelBuffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixelBuffer, .readOnly) }
        guard let yBase = CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 0),
              let uvBase = CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 1)
        else { return }
        let yStride = CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 0)
        let uvStride = CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 1)
        // The locked planes themselves, not a copy: valid until the unlock above, and
        // pushNv12 only reads them during the call.
        let y = UnsafeRawBufferPointer(
            start: yBase, count: yStride * CVPixelBufferGetHeightOfPlane(pixelBuffer, 0))
        let uv = UnsafeRawBufferPointer(
            start: uvBase, count: uvStride * CVPixelBufferGetHeightOfPlane(pixelBuffer, 1))
        // A frame the engine refuses (a size it cannot encode) is dropped like a late one.
        try? stream.pushNv12(
            width: UInt32(CVPixelBufferGetWidth(pixelBuffer)),
            height: UInt32(CVPixelBufferGetHeight(pixelBuffer)),
            y: y, yStride: UInt32(yStride),
            uv: uv, uvStride: UInt32(uvStride),
            timestampUs: timestampUs, rotation: rotation)
    }
}

/// Tracks which clockwise rotation shows the camera's buffers upright, as the device turns.
private final class OrientationTracker {
    private var observation: NSKeyValueObservation?
    private var coordinator: AnyObject?
    private var notification: NSObjectProtocol?

    init(device: AVCaptureDevice, front: Bool, onChange: @escaping (Rotation) -> Void) {
        if #available(iOS 17.0, *) {
            // The system's answer for this camera, including how it is mounted.
            let coordinator = AVCaptureDevice.RotationCoordinator(device: device, previewLayer: nil)
            self.coordinator = coordinator
            onChange(Self.rotation(degrees: coordinator.videoRotationAngleForHorizonLevelCapture))
            observation = coordinator.observe(\.videoRotationAngleForHorizonLevelCapture, options: [.new]) { c, _ in
                onChange(Self.rotation(degrees: c.videoRotationAngleForHorizonLevelCapture))
            }
        } else {
            // Before iOS 17: both cameras' sensors sit in landscape-right, so the rotation
            // follows the device's orientation (the front camera's landscape cases swap).
            let update = {
                let rotation: Rotation?
                switch UIDevice.current.orientation {
                case .portrait: rotation = .deg90
                case .portraitUpsideDown: rotation = .deg270
                case .landscapeLeft: rotation = front ? .deg180 : .deg0
                case .landscapeRight: rotation = front ? .deg0 : .deg180
                default: rotation = nil  // face up or down, unknown: keep the last one
                }
                if let rotation { onChange(rotation) }
            }
            DispatchQueue.main.async {
                UIDevice.current.beginGeneratingDeviceOrientationNotifications()
                update()
            }
            notification = NotificationCenter.default.addObserver(
                forName: UIDevice.orientationDidChangeNotification, object: nil, queue: .main
            ) { _ in update() }
        }
    }

    deinit {
        observation?.invalidate()
        if let notification {
            NotificationCenter.default.removeObserver(notification)
            DispatchQueue.main.async { UIDevice.current.endGeneratingDeviceOrientationNotifications() }
        }
    }

    private static func rotation(degrees: CGFloat) -> Rotation {
        switch (Int(degrees.rounded()) % 360 + 360) % 360 {
        case 45..<135: return .deg90
        case 135..<225: return .deg180
        case 225..<315: return .deg270
        default: return .deg0
        }
    }
}
#endif
