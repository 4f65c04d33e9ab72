// Duet's example app. It uses the Duet library from this repository as a Gradle project
// dependency, the way an app adds Duet until a published AAR exists: `:duet` is
// ../kotlin/duet, built with the app.
//
// Before building, put the native engine in place: ../scripts/build-android writes
// libduet_ffi.so for each ABI into ../kotlin/duet/src/main/jniLibs/ (see README.md).

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

rootProject.name = "duet-example"
include(":app")
include(":duet")
project(":duet").projectDir = file("../kotlin/duet")
