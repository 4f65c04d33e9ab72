// Shows the model's screen, and on top of any of them: problems (with the one thing to do
// about each) and the reconnecting banner.

import DuetExampleKit
import SwiftUI
import UIKit

struct RootView: View {
    let model: CallModel
    @Environment(\.openURL) private var openURL

    var body: some View {
        screen
            .overlay(alignment: .top) {
                if model.isReconnecting, model.screen != .signIn {
                    Label("Reconnecting to the server…", systemImage: "wifi.exclamationmark")
                        .font(.footnote.weight(.semibold))
                        .padding(.horizontal, 14)
                        .padding(.vertical, 8)
                        .background(.orange, in: Capsule())
                        .foregroundStyle(.white)
                        .padding(.top, 4)
                }
            }
            .alert("Duet", isPresented: problemShown, presenting: model.problem) { problem in
                switch problem.remedy {
                case .signInAgain:
                    Button("Sign in again") { Task { await model.signInAgain() } }
                    Button("Sign out", role: .cancel) { Task { await model.signOut() } }
                case .openSettings:
                    Button("Open Settings") {
                        model.dismissProblem()
                        openURL(URL(string: UIApplication.openSettingsURLString)!)
                    }
                    Button("Not now", role: .cancel) { model.dismissProblem() }
                case .retry, .dismiss:
                    Button("OK", role: .cancel) { model.dismissProblem() }
                }
            } message: { problem in
                Text(problem.message)
            }
    }

    @ViewBuilder private var screen: some View {
        switch model.screen {
        case .signIn: SignInView(model: model)
        case .home: HomeView(model: model)
        case .outgoing(let remoteUid): OutgoingCallView(model: model, remoteUid: remoteUid)
        case .incoming(let call): IncomingCallView(model: model, call: call)
        case .inCall(let remoteUid): InCallView(model: model, remoteUid: remoteUid)
        case .ended(let summary): CallEndedView(model: model, summary: summary)
        }
    }

    private var problemShown: Binding<Bool> {
        Binding(get: { model.problem != nil }, set: { if !$0 { model.dismissProblem() } })
    }
}
