// How the call ended ("bob is busy", "No answer from bob", or what went wrong), until the
// user moves on.

import DuetExampleKit
import SwiftUI

struct CallEndedView: View {
    let model: CallModel
    let summary: CallSummary

    var body: some View {
        VStack(spacing: 16) {
            Spacer()
            Image(systemName: summary.problem == nil ? "phone.down.circle" : "exclamationmark.triangle")
                .font(.system(size: 72))
                .foregroundStyle(summary.problem == nil ? Color.secondary : Color.orange)
            Text(summary.title)
                .font(.title2.bold())
                .multilineTextAlignment(.center)
            if let problem = summary.problem {
                Text(problem.message)
                    .multilineTextAlignment(.center)
                    .foregroundStyle(.secondary)
            }
            Spacer()
            if summary.wasOutgoing {
                Button {
                    Task { await model.callAgain() }
                } label: {
                    Label("Call \(summary.remoteUid) again", systemImage: "video.fill")
                        .frame(maxWidth: .infinity)
                }
                .buttonStyle(.borderedProminent)
            }
            Button("Done") { model.dismissEnded() }
                .buttonStyle(.bordered)
                .padding(.bottom, 32)
        }
        .padding(.horizontal, 32)
    }
}
