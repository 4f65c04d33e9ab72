// Ringing: your own camera full screen, and a cancel button. The answer moves the model on:
// accepted to the call, anything else to the ended screen, which says which.

import DuetExampleKit
import SwiftUI

struct OutgoingCallView: View {
    let model: CallModel
    let remoteUid: String

    var body: some View {
        ZStack {
            LocalPreview(model: model)
                .ignoresSafeArea()
            VStack(spacing: 8) {
                Text(remoteUid)
                    .font(.largeTitle.bold())
                Text("Ringing…")
                    .font(.title3)
                Spacer()
                RoundButton("Cancel", systemImage: "phone.down.fill", tint: .red) { model.cancel() }
            }
            .foregroundStyle(.white)
            .shadow(radius: 4)
            .padding(.vertical, 48)
        }
    }
}
