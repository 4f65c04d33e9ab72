#if os(iOS)
import AudioToolbox
import AVFoundation

/// The call's audio: configures `AVAudioSession` for a voice chat and runs a
/// voice-processing I/O unit (echo cancellation, noise suppression, gain control) that
/// pushes the microphone into a `LocalStream` and plays a `RemoteStream`.
///
/// Audio is 48 kHz mono 16-bit: the microphone goes to `LocalStream.pushAudio` in 10 ms
/// frames (480 samples); the speaker pulls `RemoteStream.pullAudio`, which pads with
/// silence when the network is late.
///
/// The app asks for microphone permission (`NSMicrophoneUsageDescription`) before `start()`.
/// A stream made without audio (`StreamConstraints.audio == false`, e.g. the user refused
/// the microphone) only plays: the microphone is never opened.
public final class AudioSession {
    public enum Failure: Error {
        case noVoiceProcessingUnit
        case audioUnit(call: String, status: OSStatus)
    }

    public let localStream: LocalStream

    /// The loudspeaker (true, the default) or the receiver at the ear. True sends the sound
    /// to the loudspeaker even with a headset connected; false lets a headset take it.
    public var isSpeakerOn: Bool = true {
        didSet { if isActive { applySpeaker() } }
    }

    /// What the speaker plays: set it in `didReceiveStream`; `nil` plays silence.
    public var remoteStream: RemoteStream? {
        get { lock.lock(); defer { lock.unlock() }; return _remoteStream }
        set { lock.lock(); _remoteStream = newValue; lock.unlock() }
    }

    private static let sampleRate = 48_000.0
    private static let frameSamples = 480
    private static let maxSlice = 4_096

    private let lock = NSLock()
    private var _remoteStream: RemoteStream?
    private var unit: AudioUnit?
    private var interruptions: NSObjectProtocol?
    private var isActive = false
    /// Whether the microphone is captured: only when the stream carries audio.
    private let captures: Bool

    // Used only on the I/O thread once started.
    private let scratch = UnsafeMutablePointer<Int16>.allocate(capacity: AudioSession.maxSlice)
    private var pending: [Int16] = []
    private var samplesPushed: UInt64 = 0

    public init(localStream: LocalStream) {
        self.localStream = localStream
        self.captures = localStream.constraints().audio
        pending.reserveCapacity(Self.maxSlice + Self.frameSamples)
    }

    deinit {
        stop()
        if let unit { AudioComponentInstanceDispose(unit) }
        scratch.deallocate()
    }

    /// Activates the audio session for a voice chat and starts capture and playout.
    public func start() throws {
        let session = AVAudioSession.sharedInstance()
        // No .defaultToSpeaker: the route follows `isSpeakerOn` (an override, so that it
        // can change during the call).
        try session.setCategory(.playAndRecord, mode: .voiceChat, options: [.allowBluetooth])
        try session.setPreferredSampleRate(Self.sampleRate)
        try session.setPreferredIOBufferDuration(0.01)
        try session.setActive(true)
        isActive = true
        applySpeaker()

        if unit == nil { unit = try makeUnit() }
        guard let unit else { return }
        try check("AudioOutputUnitStart", AudioOutputUnitStart(unit))

        if interruptions == nil {
            // A phone call or Siri stops the unit; start it again when the interruption ends.
            interruptions = NotificationCenter.default.addObserver(
                forName: AVAudioSession.interruptionNotification, object: session, queue: .main
            ) { [weak self] note in
                guard let raw = note.userInfo?[AVAudioSessionInterruptionTypeKey] as? UInt,
                      AVAudioSession.InterruptionType(rawValue: raw) == .ended,
                      let unit = self?.unit
                else { return }
                try? AVAudioSession.sharedInstance().setActive(true)
                self?.applySpeaker()
                AudioOutputUnitStart(unit)
            }
        }
    }

    /// Stops capture and playout and deactivates the audio session, letting other apps'
    /// audio resume.
    public func stop() {
        if let interruptions {
            NotificationCenter.default.removeObserver(interruptions)
            self.interruptions = nil
        }
        guard let unit else { return }
        AudioOutputUnitStop(unit)
        isActive = false
        try? AVAudioSession.sharedInstance().setActive(false, options: .notifyOthersOnDeactivation)
    }

    private func applySpeaker() {
        try? AVAudioSession.sharedInstance().overrideOutputAudioPort(isSpeakerOn ? .speaker : .none)
    }

    // MARK: - The audio unit

    private func makeUnit() throws -> AudioUnit {
        var description = AudioComponentDescription(
            componentType: kAudioUnitType_Output,
            componentSubType: kAudioUnitSubType_VoiceProcessingIO,
            componentManufacturer: kAudioUnitManufacturer_Apple,
            componentFlags: 0,
            componentFlagsMask: 0)
        guard let component = AudioComponentFindNext(nil, &description) else {
            throw Failure.noVoiceProcessingUnit
        }
        var made: AudioUnit?
        try check("AudioComponentInstanceNew", AudioComponentInstanceNew(component, &made))
        guard let unit = made else { throw Failure.noVoiceProcessingUnit }

        // Bus 1 is the microphone, bus 0 the speaker.
        let input: AudioUnitElement = 1, output: AudioUnitElement = 0
        var on: UInt32 = 1
        var capture: UInt32 = captures ? 1 : 0
        try set(unit, kAudioOutputUnitProperty_EnableIO, kAudioUnitScope_Input, input, &capture)
        try set(unit, kAudioOutputUnitProperty_EnableIO, kAudioUnitScope_Output, output, &on)

        var format = AudioStreamBasicDescription(
            mSampleRate: Self.sampleRate,
            mFormatID: kAudioFormatLinearPCM,
            mFormatFlags: kAudioFormatFlagIsSignedInteger | kAudioFormatFlagIsPacked,
            mBytesPerPacket: 2,
            mFramesPerPacket: 1,
            mBytesPerFrame: 2,
            mChannelsPerFrame: 1,
            mBitsPerChannel: 16,
            mReserved: 0)
        // What the unit hands us from the microphone, and what we hand it for the speaker;
        // it converts from and to the hardware's format.
        if captures {
            try set(unit, kAudioUnitProperty_StreamFormat, kAudioUnitScope_Output, input, &format)
        }
        try set(unit, kAudioUnitProperty_StreamFormat, kAudioUnitScope_Input, output, &format)

        let me = Unmanaged.passUnretained(self).toOpaque()
        if captures {
            var callback = AURenderCallbackStruct(inputProc: captureCallback, inputProcRefCon: me)
            try set(unit, kAudioOutputUnitProperty_SetInputCallback, kAudioUnitScope_Global, input, &callback)
        }
        var playout = AURenderCallbackStruct(inputProc: playoutCallback, inputProcRefCon: me)
        try set(unit, kAudioUnitProperty_SetRenderCallback, kAudioUnitScope_Input, output, &playout)

        try check("AudioUnitInitialize", AudioUnitInitialize(unit))
        return unit
    }

    /// On the I/O thread: the microphone has `frames` new samples; render them and push
    /// them in 10 ms frames.
    fileprivate func capture(
        _ flags: UnsafeMutablePointer<AudioUnitRenderActionFlags>,
        _ timestamp: UnsafePointer<AudioTimeStamp>,
        _ bus: UInt32,
        _ frames: UInt32
    ) -> OSStatus {
        guard let unit, Int(frames) <= Self.maxSlice else { return noErr }
        var buffers = AudioBufferList(
            mNumberBuffers: 1,
            mBuffers: AudioBuffer(mNumberChannels: 1, mDataByteSize: frames * 2, mData: UnsafeMutableRawPointer(scratch)))
        let status = AudioUnitRender(unit, flags, timestamp, bus, frames, &buffers)
        guard status == noErr else { return status }

        pending.append(contentsOf: UnsafeBufferPointer(start: scratch, count: Int(frames)))
        while pending.count >= Self.frameSamples {
            // Timestamps count samples, so they advance exactly 10 ms a frame.
            let timestampUs = samplesPushed * 1_000_000 / UInt64(Self.sampleRate)
            try? localStream.pushAudio(samples: Array(pending.prefix(Self.frameSamples)), timestampUs: timestampUs)
            pending.removeFirst(Self.frameSamples)
            samplesPushed += UInt64(Self.frameSamples)
        }
        return noErr
    }

    /// On the I/O thread: the speaker wants `frames` samples.
    fileprivate func playout(
        _ flags: UnsafeMutablePointer<AudioUnitRenderActionFlags>,
        _ frames: UInt32,
        _ data: UnsafeMutablePointer<AudioBufferList>?
    ) -> OSStatus {
        guard let data else { return noErr }
        let buffers = UnsafeMutableAudioBufferListPointer(data)
        guard let buffer = buffers.first, let out = buffer.mData else { return noErr }
        let capacity = Int(buffer.mDataByteSize)
        guard let remote = remoteStream else {
            memset(out, 0, capacity)
            flags.pointee.insert(.unitRenderAction_OutputIsSilence)
            return noErr
        }
        let samples = remote.pullAudio(samples: frames)
        samples.withUnsafeBytes { bytes in
            let count = min(bytes.count, capacity)
            if let base = bytes.baseAddress { memcpy(out, base, count) }
            if count < capacity { memset(out + count, 0, capacity - count) }
        }
        return noErr
    }

    private func set<T>(
        _ unit: AudioUnit, _ property: AudioUnitPropertyID, _ scope: AudioUnitScope,
        _ element: AudioUnitElement, _ value: inout T
    ) throws {
        let status = AudioUnitSetProperty(unit, property, scope, element, &value, UInt32(MemoryLayout<T>.size))
        try check("AudioUnitSetProperty(\(property))", status)
    }

    private func check(_ call: String, _ status: OSStatus) throws {
        guard status == noErr else { throw Failure.audioUnit(call: call, status: status) }
    }
}

// C function pointers for the audio unit: they cannot capture, so the session comes back
// through the reference constant.
private let captureCallback: AURenderCallback = { refCon, flags, timestamp, bus, frames, _ in
    Unmanaged<AudioSession>.fromOpaque(refCon).takeUnretainedValue().capture(flags, timestamp, bus, frames)
}

private let playoutCallback: AURenderCallback = { refCon, flags, _, _, frames, data in
    Unmanaged<AudioSession>.fromOpaque(refCon).takeUnretainedValue().playout(flags, frames, data)
}
#endif
