// Server URL and uid. The app asks the server for a development token (`duet serve` hands
// them out); a real app would get its token from its own backend instead.

import DuetExampleKit
import SwiftUI

struct SignInView: View {
    @Bindable var model: CallModel

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    TextField("Server", text: $model.serverURL, prompt: Text("http://192.168.1.20:7480"))
                        .keyboardType(.URL)
                        .textContentType(.URL)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    TextField("Your uid", text: $model.uid, prompt: Text("alice"))
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                } footer: {
                    Text("A development server: `duet serve` on your Mac. From a phone, start it with `--listen 0.0.0.0:7480` and use the Mac's Wi-Fi address.")
                }

                if let problem = model.signInProblem {
                    Section {
                        Label(problem.message, systemImage: "exclamationmark.triangle.fill")
                            .foregroundStyle(.red)
                    }
                }

                Section {
                    Button {
                        Task { await model.signIn() }
                    } label: {
                        HStack {
                            Text(model.signInProblem?.remedy == .retry ? "Retry" : "Sign in")
                            if model.isWorking {
                                Spacer()
                                ProgressView()
                            }
                        }
                    }
                    .disabled(model.isWorking)
                }
            }
            .navigationTitle("Duet")
            .onSubmit { Task { await model.signIn() } }
        }
    }
}
