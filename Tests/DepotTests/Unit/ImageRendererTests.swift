import DepotCore
import DepotImages
import Foundation
import Testing

/// libvips through `VipsImageRenderer`: sizes and formats as asked; hostile input refused on its
/// header, with a readable error, permanent (a dead letter, not a retry), and never a crash.
@Suite("Image renderer", .enabled(if: VipsImageRenderer.isBuiltIn, "built without libvips"))
struct ImageRendererTests {
    let renderer = VipsImageRenderer(threads: 2, maxPixels: 25_000_000)

    @Test func rendersEachFitAndFormat() async throws {
        let source = ImageFixture.png(width: 400, height: 300)
        let cover = try await renderer.render(source, ImageRequest(width: 112, height: 112, fit: .cover, format: .png))
        #expect(ImageFixture.pngSize(cover).map { [$0.0, $0.1] } == [112, 112])
        let contain = try await renderer.render(source, ImageRequest(width: 112, height: 112, fit: .contain, format: .png))
        #expect(ImageFixture.pngSize(contain).map { [$0.0, $0.1] } == [112, 84])
        let fill = try await renderer.render(source, ImageRequest(width: 56, height: 20, fit: .fill, format: .png))
        #expect(ImageFixture.pngSize(fill).map { [$0.0, $0.1] } == [56, 20])
        for format in ImageFormat.allCases {
            let out = try await renderer.render(source, ImageRequest(width: 56, height: 56, format: format))
            let h = VipsImageRenderer.header(of: out)
            #expect(
                h?.width == 56 && h?.height == 56 && h?.loader.lowercased().contains(format == .gif ? "gif" : format.rawValue) == true,
                "\(format): \(String(describing: h))")
            // And each output reads back as a source.
            let again = try await renderer.render(out, ImageRequest(width: 10, height: 10, format: .png))
            #expect(ImageFixture.pngSize(again).map { [$0.0, $0.1] } == [10, 10])
        }
    }

    @Test func hostileInputsAreRefusedPermanently() async throws {
        let cases: [(String, [UInt8], String)] = [
            ("a 50,000 × 50,000 header", ImageFixture.claimingPNG(width: 50_000, height: 50_000), "pixels"),
            ("a truncated PNG", ImageFixture.truncatedPNG(), ""),
            ("a PDF", ImageFixture.pdf, ""),
            ("random bytes after a PNG signature", Fixture.bytes(Fixture.pngMagic, size: 4096), ""),
            ("nothing", [], ""),
        ]
        for (name, bytes, mentions) in cases {
            do {
                _ = try await renderer.render(bytes, ImageRequest(width: 112, height: 112, format: .png))
                Issue.record("\(name) was rendered")
            } catch let e as ImageError {
                #expect(e.permanent && !e.message.isEmpty && (mentions.isEmpty || e.message.contains(mentions)), "\(name): \(e.message)")
            }
        }
        // Still serving after all of it.
        let ok = try await renderer.render(ImageFixture.png(width: 20, height: 20), ImageRequest(width: 8, height: 8, format: .png))
        #expect(ImageFixture.pngSize(ok).map { [$0.0, $0.1] } == [8, 8])
    }
}

/// Where libvips is installed (CI: scripts/test installs it), the build has it: image tests
/// never skip silently there.
@Suite("Image renderer build")
struct ImageRendererBuildTests {
    @Test func libvipsIsBuiltInWhereItIsInstalled() {
        let installed = FileManager.default.fileExists(atPath: "/usr/include/vips/vips.h")
        if installed || ProcessInfo.processInfo.environment["CI"] != nil {
            #expect(
                VipsImageRenderer.isBuiltIn,
                "libvips-dev is installed (or this is CI) but Depot was built without it: touch Package.swift and rebuild")
        }
    }
}
