import ArgumentParser
import DepotCore
import DepotHTTP

/// What one tenant or caller may use: storage quotas and request rates (`depot serve`).
struct LimitOptions: ParsableArguments {
    @Option(
        name: .customLong("quota-bytes"),
        help: "Most bytes one user (JWT sub) may store over all buckets; 0: no limit. (env DEPOT_QUOTA_BYTES, default 10737418240 = 10 GiB)")
    var quotaBytes: Int64?
    @Option(name: .customLong("quota-objects"), help: "Most objects one user may store; 0: no limit. (env DEPOT_QUOTA_OBJECTS, default 100000)")
    var quotaObjects: Int?
    @Option(
        name: .customLong("max-open-uploads"),
        help:
            "Most upload URLs (presigned or signed) one user may hold unused at once, and (counted apart) most unfinished resumable uploads; 0: no limit. (env DEPOT_MAX_OPEN_UPLOADS, default 1000)"
    )
    var maxOpenUploads: Int?
    @Option(
        name: .customLong("rate-limit"),
        help:
            "Requests per second one caller presenting a token may make (a user by its sub, anon by its address; the service role is not limited); 0: off. (env DEPOT_RATE_LIMIT, default 100)"
    )
    var rateLimit: Int?
    @Option(
        name: .customLong("rate-burst"), help: "Requests a caller may make at once before --rate-limit applies. (env DEPOT_RATE_BURST, default 200)")
    var rateBurst: Int?

    struct Resolved {
        var quota: TenantQuota
        var rates: RateLimiter.Limits
    }

    func resolve() throws -> Resolved {
        func number<T: FixedWidthInteger>(_ flag: T?, _ env: String, _ def: T) throws -> T {
            let value: T
            if let flag {
                value = flag
            } else if let s = setting(nil, env) {
                guard let v = RequestNumber.parse(s).flatMap(T.init(exactly:)) else {
                    throw ValidationError("\(env) must be a whole number ≥ 0, got '\(s)'")
                }
                value = v
            } else {
                value = def
            }
            guard value >= 0 else { throw ValidationError("\(env) must be ≥ 0") }
            return value
        }
        var quota = TenantQuota()
        quota.bytes = try number(quotaBytes, "DEPOT_QUOTA_BYTES", quota.bytes)
        quota.objects = try number(quotaObjects, "DEPOT_QUOTA_OBJECTS", quota.objects)
        quota.pendingUploads = try number(maxOpenUploads, "DEPOT_MAX_OPEN_UPLOADS", quota.pendingUploads)
        let defaults = RateLimiter.Limits()
        let rate = try number(rateLimit, "DEPOT_RATE_LIMIT", Int(defaults.rate))
        let burst = try number(rateBurst, "DEPOT_RATE_BURST", Int(defaults.burst))
        guard rate <= 1_000_000, burst <= 1_000_000 else { throw ValidationError("--rate-limit and --rate-burst must be at most 1000000") }
        guard rate == 0 || burst >= 1 else { throw ValidationError("--rate-burst must be at least 1") }
        return Resolved(quota: quota, rates: RateLimiter.Limits(rate: Double(rate), burst: Double(burst)))
    }
}
