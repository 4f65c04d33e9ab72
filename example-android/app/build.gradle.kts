// The example app: plain Android framework views built in code, Duet for the calls.
//
// JVM unit tests (src/test) drive the app's call logic (dev.duet.example.call, no Android
// classes) against a host build of the engine and a local `duet serve`:
// `cargo build -p duet-ffi -p duet-cli` first. ../scripts/test-kotlin runs the same tests
// without Gradle.

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

val coroutinesVersion = "1.10.2"
val jnaVersion = "5.18.1"

// The repository's root (example-android/ is one level down) and its cargo target directory.
val repoRoot: File = rootDir.parentFile
val cargoTarget: File = System.getenv("CARGO_TARGET_DIR")?.let { File(it) } ?: File(repoRoot, "target")
// FCM is set up (the README's steps): the Firebase project's config is in app/.
val firebase: Boolean = file("google-services.json").exists()
if (firebase) apply(plugin = "com.google.gms.google-services")

android {
    namespace = "dev.duet.example"
    compileSdk = 34

    defaultConfig {
        applicationId = "dev.duet.example"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    sourceSets["main"].java.srcDirs("src/main/kotlin")
    // Pushes through FCM (README, "Ringing in the background"): with the Firebase project's
    // google-services.json in app/, the app's FirebaseMessagingService is built in.
    if (firebase) sourceSets["main"].java.srcDirs("src/firebase/kotlin")
    // The library's test server (DuetServer), shared rather than copied.
    sourceSets["test"].java.srcDirs("src/test/kotlin", "../../kotlin/duet/src/testSupport/kotlin")

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    testOptions {
        unitTests.all { test ->
            // The host engine and server for the JVM tests.
            test.systemProperty("jna.library.path", File(cargoTarget, "debug").path)
            test.systemProperty("duet.bin", File(cargoTarget, "debug/duet").path)
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":duet"))
    // From Google's Maven repository (google() in settings.gradle.kts), only with Firebase set up.
    if (firebase) implementation("com.google.firebase:firebase-messaging:24.1.0")
    // Dispatchers.Main for the activity's coroutines.
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:$coroutinesVersion")

    // JVM unit tests load the host's libduet_ffi through JNA's plain jar.
    testImplementation("net.java.dev.jna:jna:$jnaVersion")
    testImplementation("junit:junit:4.13.2")
    testImplementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:$coroutinesVersion")
}
