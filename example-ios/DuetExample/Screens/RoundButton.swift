// The call screens' round button with a caption.

import SwiftUI

struct RoundButton: View {
    let title: String
    let systemImage: String
    let tint: Color
    let action: () -> Void

    init(_ title: String, systemImage: String, tint: Color, action: @escaping () -> Void) {
        self.title = title
        self.systemImage = systemImage
        self.tint = tint
        self.action = action
    }

    var body: some View {
        Button(action: action) {
            VStack(spacing: 6) {
                Image(systemName: systemImage)
                    .font(.title2)
                    .frame(width: 58, height: 58)
                    .background(tint.opacity(0.9), in: Circle())
                    .foregroundStyle(tint == .white ? Color.black : Color.white)
                Text(title)
                    .font(.caption2)
                    .foregroundStyle(.white)
            }
        }
        .accessibilityLabel(title)
    }
}
