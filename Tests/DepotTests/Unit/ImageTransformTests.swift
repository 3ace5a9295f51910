import DepotCore
import Testing

/// The render API's parameters: Supabase's names and ranges, one compact spelling per transform
/// (it is signed into render tokens), WebP chosen by `Accept` only when no format is asked.
@Suite struct ImageTransformTests {
    func parse(_ query: [String: String]) throws -> ImageTransform { try ImageTransform.parse { query[$0] } }

    func message(_ query: [String: String]) -> String? {
        do { _ = try parse(query); return nil } catch let e as StorageError { return e.message } catch { return "\(error)" }
    }

    @Test func supabaseParametersAreRead() throws {
        let t = try parse(["width": "200", "height": "100", "resize": "contain", "quality": "75", "format": "origin", "token": "x"])
        #expect(t == ImageTransform(width: 200, height: 100, resize: .contain, quality: 75, format: .origin))
        #expect(try parse([:]) == ImageTransform())
        #expect(try parse(["width": "2500", "quality": "20"]).width == 2500)
        #expect(try parse(["width": "0007"]).width == 7)
    }

    @Test func badValuesSayWhatIsAccepted() {
        for bad in ["0", "2501", "-1", "+5", " 5", "5 ", "1e3", "0x10", "99999999999999999999999", "", "٣"] {
            #expect(message(["width": bad]) == "width must be an integer from 1 to 2500", "\(bad)")
            #expect(message(["height": bad]) == "height must be an integer from 1 to 2500", "\(bad)")
        }
        #expect(message(["quality": "19"]) == "quality must be an integer from 20 to 100")
        #expect(message(["quality": "101"]) == "quality must be an integer from 20 to 100")
        #expect(message(["resize": "Cover"]) == "resize must be cover, contain or fill")
        #expect(message(["format": "gif"]) == "format must be origin, webp, jpeg or png")
        #expect(message(["format": "avif"])?.hasPrefix("format avif is not available") == true)
    }

    @Test func theCompactSpellingReadsBackAndIsCanonical() throws {
        let all = [
            ImageTransform(), ImageTransform(width: 1), ImageTransform(height: 2500, resize: .fill),
            ImageTransform(width: 40, height: 40, resize: .contain, quality: 100, format: .origin),
            ImageTransform(width: 2500, height: 2500, resize: .cover, quality: 20, format: .webp),
        ]
        for t in all {
            #expect(ImageTransform(compact: t.compact[...]) == t, "\(t.compact)")
            #expect(!t.compact.contains(".") && t.compact.utf8.count <= 40)
        }
        #expect(ImageTransform(width: 40, height: 40, resize: .contain, quality: 100, format: .origin).compact == "w40h40rnq100forigin")
        // Other spellings of the same transform, or values out of range, do not read.
        for bad in ["w040rc", "h40w40rc", "w40", "w0rc", "w2501rc", "q10rc", "rcq10", "rx", "rcfgif", "rc ", "rcforiginx", ""] {
            #expect(ImageTransform(compact: bad[...]) == nil, "\(bad)")
        }
    }

    @Test func theOutputFormatFollowsFormatThenAccept() {
        let auto = ImageTransform(width: 10)
        #expect(auto.output(for: .png, accept: "image/avif,image/webp,*/*") == .webp)
        #expect(auto.output(for: .png, accept: "IMAGE/WEBP;q=0.5") == .webp)
        #expect(auto.output(for: .png, accept: "image/webp;q=0") == .png)
        #expect(auto.output(for: .png, accept: "image/webp; q=0.000") == .png)
        #expect(auto.output(for: .jpeg, accept: "image/webpx, */*") == .jpeg)
        #expect(auto.output(for: .gif, accept: nil) == .gif)
        #expect(ImageTransform(format: .origin).output(for: .png, accept: "image/webp") == .png)
        #expect(ImageTransform(format: .jpeg).output(for: .png, accept: nil) == .jpeg)
        #expect(auto.request(format: .webp) == ImageRequest(width: 10, height: 0, fit: .cover, format: .webp, quality: 80))
    }
}
