#if os(iOS)
import AVFoundation
import CoreMedia
import CoreVideo
import UIKit

/// Shows a `RemoteStream`'s video:
///
///     remote.setVideoSink(sink: videoView.sink)
///
/// Each decoded I420 frame is copied once, into an NV12 `CVPixelBuffer`, and shown by an
/// `AVSampleBufferDisplayLayer` as soon as it arrives.
///
/// The view is not the sink itself: the engine holds its sink and may release it on a
/// media thread, and a `UIView` must be released on the main thread. The sink holds only
/// the display layer.
public final class VideoView: UIView {
    /// Give this to `RemoteStream.setVideoSink(sink:)`, from any thread.
    nonisolated public let sink: VideoViewSink

    /// How the picture fills the view; `.resizeAspect` by default.
    public var videoGravity: AVLayerVideoGravity {
        get { sink.displayLayer.videoGravity }
        set { sink.displayLayer.videoGravity = newValue }
    }

    public override init(frame: CGRect) {
        sink = VideoViewSink()
        super.init(frame: frame)
        commonInit()
    }

    public required init?(coder: NSCoder) {
        sink = VideoViewSink()
        super.init(coder: coder)
        commonInit()
    }

    private func commonInit() {
        backgroundColor = .black
        sink.displayLayer.videoGravity = .resizeAspect
        layer.addSublayer(sink.displayLayer)
    }

    public override func layoutSubviews() {
        super.layoutSubviews()
        sink.layout(in: bounds)
    }
}

/// The `VideoSink` behind a `VideoView`. Frames arrive on a media thread; they are copied
/// there and shown on the main thread. Frames that arrive while the main thread is behind
/// are dropped rather than queued.
public final class VideoViewSink: VideoSink, @unchecked Sendable {
    let displayLayer = AVSampleBufferDisplayLayer()

    private let lock = NSLock()
    private var pool: CVPixelBufferPool?
    private var poolWidth = 0
    private var poolHeight = 0
    private var framesInFlight = 0
    private var rotation: Rotation = .deg0
    private var bounds = CGRect.zero

    public func onVideoFrame(frame: VideoFrame) {
        lock.lock()
        let busy = framesInFlight >= 2
        if !busy { framesInFlight += 1 }
        lock.unlock()
        guard !busy else { return }

        guard let sample = makeSampleBuffer(frame) else {
            finished()
            return
        }
        let rotation = frame.rotation()
        DispatchQueue.main.async { [self] in
            defer { finished() }
            if displayLayer.status == .failed { displayLayer.flush() }
            displayLayer.enqueue(sample)
            if rotation != self.rotation {
                self.rotation = rotation
                layout(in: bounds)
            }
        }
    }

    /// On the main thread: fits the layer to `bounds`, turned by the frames' rotation.
    func layout(in bounds: CGRect) {
        self.bounds = bounds
        let quarterTurns: Int
        switch rotation {
        case .deg0: quarterTurns = 0
        case .deg90: quarterTurns = 1
        case .deg180: quarterTurns = 2
        case .deg270: quarterTurns = 3
        }
        CATransaction.begin()
        CATransaction.setDisableActions(true)
        displayLayer.setAffineTransform(CGAffineTransform(rotationAngle: CGFloat(quarterTurns) * .pi / 2))
        // Turned a quarter, the layer's own width is the view's height.
        let size = quarterTurns % 2 == 0 ? bounds.size : CGSize(width: bounds.height, height: bounds.width)
        displayLayer.bounds = CGRect(origin: .zero, size: size)
        displayLayer.position = CGPoint(x: bounds.midX, y: bounds.midY)
        CATransaction.commit()
    }

    private func finished() {
        lock.lock()
        framesInFlight -= 1
        lock.unlock()
    }

    /// Copies the frame into a pixel buffer from the pool: Y as is, U and V interleaved.
    private func makeSampleBuffer(_ frame: VideoFrame) -> CMSampleBuffer? {
        let width = Int(frame.width()), height = Int(frame.height())
        guard width > 0, height > 0, let pixelBuffer = makePixelBuffer(width: width, height: height) else {
            return nil
        }
        CVPixelBufferLockBaseAddress(pixelBuffer, [])
        frame.withUnsafePlanes { planes in
            guard let yIn = planes.y.baseAddress, let uIn = planes.u.baseAddress, let vIn = planes.v.baseAddress,
                  let yOut = CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 0),
                  let uvOut = CVPixelBufferGetBaseAddressOfPlane(pixelBuffer, 1)
            else { return }
            let yOutStride = CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 0)
            let uvOutStride = CVPixelBufferGetBytesPerRowOfPlane(pixelBuffer, 1)
            for row in 0..<planes.height {
                memcpy(yOut + row * yOutStride, yIn + row * planes.yStride, planes.width)
            }
            for row in 0..<planes.chromaHeight {
                let u = (uIn + row * planes.uStride).assumingMemoryBound(to: UInt8.self)
                let v = (vIn + row * planes.vStride).assumingMemoryBound(to: UInt8.self)
                let uv = (uvOut + row * uvOutStride).assumingMemoryBound(to: UInt8.self)
                for column in 0..<planes.chromaWidth {
                    uv[2 * column] = u[column]
                    uv[2 * column + 1] = v[column]
                }
            }
        }
        CVPixelBufferUnlockBaseAddress(pixelBuffer, [])

        var format: CMVideoFormatDescription?
        guard CMVideoFormatDescriptionCreateForImageBuffer(
            allocator: kCFAllocatorDefault, imageBuffer: pixelBuffer, formatDescriptionOut: &format) == noErr,
            let format
        else { return nil }
        var timing = CMSampleTimingInfo(
            duration: .invalid,
            presentationTimeStamp: CMTime(value: CMTimeValue(frame.timestampUs()), timescale: 1_000_000),
            decodeTimeStamp: .invalid)
        var sample: CMSampleBuffer?
        guard CMSampleBufferCreateReadyWithImageBuffer(
            allocator: kCFAllocatorDefault, imageBuffer: pixelBuffer, formatDescription: format,
            sampleTiming: &timing, sampleBufferOut: &sample) == noErr,
            let sample
        else { return nil }
        // Show it now: the layer has no timebase to schedule by, and a call wants the
        // latest picture, not a smooth one.
        if let attachments = CMSampleBufferGetSampleAttachmentsArray(sample, createIfNecessary: true),
           CFArrayGetCount(attachments) > 0 {
            let first = unsafeBitCast(CFArrayGetValueAtIndex(attachments, 0), to: CFMutableDictionary.self)
            CFDictionarySetValue(
                first,
                Unmanaged.passUnretained(kCMSampleAttachmentKey_DisplayImmediately).toOpaque(),
                Unmanaged.passUnretained(kCFBooleanTrue).toOpaque())
        }
        return sample
    }

    private func makePixelBuffer(width: Int, height: Int) -> CVPixelBuffer? {
        if pool == nil || poolWidth != width || poolHeight != height {
            // Full range: the engine carries the camera's samples unchanged, and Duet's
            // capturers deliver full-range NV12.
            let attributes: [String: Any] = [
                kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange,
                kCVPixelBufferWidthKey as String: width,
                kCVPixelBufferHeightKey as String: height,
                kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any](),
            ]
            pool = nil
            CVPixelBufferPoolCreate(kCFAllocatorDefault, nil, attributes as CFDictionary, &pool)
            poolWidth = width
            poolHeight = height
        }
        guard let pool else { return nil }
        var pixelBuffer: CVPixelBuffer?
        CVPixelBufferPoolCreatePixelBuffer(kCFAllocatorDefault, pool, &pixelBuffer)
        return pixelBuffer
    }
}
#endif
