// Duet's Android library, built with Gradle (Kotlin DSL) and the Android Gradle Plugin.
//
// Open this directory (kotlin/) in Android Studio, or add the module to an app's build:
//   settings.gradle.kts of the app:   include(":duet"); project(":duet").projectDir = file("<duet>/kotlin/duet")
//   app/build.gradle.kts:              dependencies { implementation(project(":duet")) }
//
// Before building, put the native library in place: scripts/build-android (cargo-ndk) writes
// libduet_ffi.so for every ABI into duet/src/main/jniLibs/. The Kotlin API itself,
// duet/src/main/kotlin/dev/duet/duet.kt, is generated (scripts/generate-bindings) and checked in.
//
// Not built on the project's Linux machines (no Android SDK there): scripts/test-kotlin
// compiles the same sources against the Android framework jar and runs the JVM tests.

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "duet-android"
include(":duet")
