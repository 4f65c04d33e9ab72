// Someone is calling: who, their custom data, accept or reject.

import DuetExampleKit
import SwiftUI

struct IncomingCallView: View {
    let model: CallModel
    let call: IncomingCall

    var body: some View {
        VStack(spacing: 12) {
            Spacer()
            Image(systemName: "person.crop.circle.fill")
                .font(.system(size: 96))
                .foregroundStyle(.gray)
            Text(call.callerUid)
                .font(.largeTitle.bold())
            Text("is calling…")
                .font(.title3)
                .foregroundStyle(.gray)
            if let data = call.data {
                Text("“\(data)”")
                    .font(.body.italic())
                    .padding(.top, 8)
            }
            Spacer()
            HStack(spacing: 80) {
                RoundButton("Reject", systemImage: "phone.down.fill", tint: .red) { model.reject() }
                RoundButton("Accept", systemImage: "video.fill", tint: .green) {
                    Task { await model.accept() }
                }
                .disabled(model.isWorking)
            }
            .padding(.bottom, 48)
        }
        .padding()
        .frame(maxWidth: .infinity, maxHeight: .infinity)
        .background(.black)
        .foregroundStyle(.white)
    }
}
