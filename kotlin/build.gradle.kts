// Plugin versions for the whole build; the module applies them (duet/build.gradle.kts).
// AGP 8.13 needs Gradle 8.13 or later and JDK 17. Kotlin matches the compiler that
// scripts/install-kotlin uses for the Linux checks.
plugins {
    id("com.android.library") version "8.13.0" apply false
    id("org.jetbrains.kotlin.android") version "2.4.21" apply false
}
