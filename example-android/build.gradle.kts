// Plugin versions for the app and the Duet library it includes; the same as
// ../kotlin/build.gradle.kts (AGP 8.13 needs Gradle 8.13 or later and JDK 17).
plugins {
    id("com.android.application") version "8.13.0" apply false
    id("com.android.library") version "8.13.0" apply false
    id("org.jetbrains.kotlin.android") version "2.4.21" apply false
    // Applied by app/ only when app/google-services.json is there (FCM pushes).
    id("com.google.gms.google-services") version "4.4.2" apply false
}
