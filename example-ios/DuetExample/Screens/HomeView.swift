// Who you are, and who to call, with optional custom data for the callee.

import DuetExampleKit
import SwiftUI
import UIKit

struct HomeView: View {
    @Bindable var model: CallModel
    @Environment(\.openURL) private var openURL

    var body: some View {
        NavigationStack {
            Form {
                Section("Signed in") {
                    LabeledContent("You", value: model.signedInUid ?? "")
                    LabeledContent("Server", value: model.serverURL)
                }

                Section {
                    TextField("uid to call", text: $model.calleeUid, prompt: Text("bob"))
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    TextField("Custom data (optional)", text: $model.customData)
                } footer: {
                    Text("The custom data reaches the callee with the call.")
                }

                Section {
                    Button {
                        Task { await model.call() }
                    } label: {
                        Label("Call", systemImage: "video.fill")
                    }
                    .disabled(model.calleeUid.isEmpty || model.isWorking)
                }

                if let limitation = model.access?.limitation {
                    Section {
                        Label(limitation, systemImage: "exclamationmark.triangle")
                        Button("Allow in Settings") { openURL(URL(string: UIApplication.openSettingsURLString)!) }
                    }
                }
            }
            .navigationTitle("Duet")
            .toolbar {
                Button("Sign out") { Task { await model.signOut() } }
            }
        }
    }
}
