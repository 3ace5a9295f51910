import ArgumentParser
import Depot
import DepotCore
import Foundation

/// Image work: variants and the job workers that make them, and the render API's cache and
/// concurrency (`depot serve`).
struct JobOptions: ParsableArguments {
    @Option(
        name: .customLong("variants"),
        help:
            "Sizes made of every image uploaded through the Assets API, as WxH separated by commas, written beside it as {name}_{W}x{H}.{ext}; 'none' for none. (env DEPOT_VARIANTS, default 112x112,56x56)"
    )
    var variants: String?
    @Option(
        name: .customLong("job-workers"),
        help: "Jobs (variants) run at once by this server, each on a thread of its own. (env DEPOT_JOB_WORKERS, default: the number of cores)")
    var jobWorkers: Int?
    @Option(
        name: .customLong("job-queue-limit"),
        help:
            "Most open (queued or running) jobs in all; an upload that would queue more is refused with 503 and Retry-After. (env DEPOT_JOB_QUEUE_LIMIT, default 200000)"
    )
    var jobQueueLimit: Int?
    @Option(
        name: .customLong("job-tenant-limit"),
        help: "Most open jobs of one user; past it, that user's image uploads are refused with 503. (env DEPOT_JOB_TENANT_LIMIT, default 10000)")
    var jobTenantLimit: Int?
    @Option(
        name: .customLong("job-lease"),
        help:
            "Seconds a worker holds a job without a heartbeat; a job whose server died is taken over by another (or this one restarted) after this. (env DEPOT_JOB_LEASE, default 30)"
    )
    var jobLease: Int?
    @Option(
        name: .customLong("render-cache-bytes"),
        help:
            "Bytes of transformed images (the render API, /storage/v1/render/image/…) kept in the blob store; past it the least recently used are deleted. (env DEPOT_RENDER_CACHE_BYTES, default 1073741824 = 1 GiB)"
    )
    var renderCacheBytes: Int?
    @Option(
        name: .customLong("render-concurrency"),
        help:
            "Images transformed at once for render requests (each holds its source, at most 64 MiB, in memory); 64 more may wait, past that a request gets 503 with Retry-After. (env DEPOT_RENDER_CONCURRENCY, default: the number of cores)"
    )
    var renderConcurrency: Int?

    struct Resolved {
        var variants: [VariantSize]
        var limits: JobLimits
        var runner: JobRunnerConfiguration
        var renderCacheBytes: Int64
        var concurrentRenders: Int
    }

    func resolve() throws -> Resolved {
        func number(_ flag: Int?, _ env: String, _ def: Int, _ range: ClosedRange<Int>) throws -> Int {
            var value = def
            if let flag {
                value = flag
            } else if let s = setting(nil, env) {
                guard let v = RequestNumber.parse(s).flatMap(Int.init(exactly:)) else {
                    throw ValidationError("\(env) must be a whole number, got '\(s)'")
                }
                value = v
            }
            guard range.contains(value) else { throw ValidationError("\(env) must be \(range.lowerBound) … \(range.upperBound), got \(value)") }
            return value
        }
        let text = setting(variants, "DEPOT_VARIANTS") ?? "112x112,56x56"
        var sizes: [VariantSize] = []
        if !["none", ""].contains(text.trimmingCharacters(in: .whitespaces).lowercased()) {
            do throws(VariantSize.ListError) {
                sizes = try VariantSize.parseList(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            } catch {
                switch error {
                case .notASize(let item):
                    throw ValidationError("--variants: '\(item)' is not a size WxH of 1 … 4096 pixels a side (e.g. 112x112)")
                case .tooMany:
                    throw ValidationError("--variants: at most \(VariantSize.maxCount) sizes")
                }
            }
        }
        var runner = JobRunnerConfiguration()
        runner.workers = try number(jobWorkers, "DEPOT_JOB_WORKERS", runner.workers, 1...256)
        runner.lease = .seconds(try number(jobLease, "DEPOT_JOB_LEASE", 30, 1...86_400))
        let limits = JobLimits(
            perTenant: try number(jobTenantLimit, "DEPOT_JOB_TENANT_LIMIT", JobLimits().perTenant, 1...100_000_000),
            total: try number(jobQueueLimit, "DEPOT_JOB_QUEUE_LIMIT", JobLimits().total, 1...100_000_000))
        let defaults = StorageSettings()
        return Resolved(
            variants: sizes, limits: limits, runner: runner,
            renderCacheBytes: Int64(try number(renderCacheBytes, "DEPOT_RENDER_CACHE_BYTES", Int(defaults.renditionCacheBytes), 0...(1 << 50))),
            concurrentRenders: try number(renderConcurrency, "DEPOT_RENDER_CONCURRENCY", defaults.concurrentRenders, 1...256))
    }
}
