/**
 * Longest timeout a ban may carry to the kernel, in seconds (2^31 − 1, ~68
 * years: clear of sign trouble in 32 bits). Backends whose kernel holds less
 * clamp to their own limit (ipset ~24.8 days, nftables a year) and the proxy
 * enforces the rest. The state file refuses a restored ban with more time
 * left, since a backend refuses a whole batch for one element past it.
 */
export const MAX_TIMEOUT_SEC = 2 ** 31 - 1;
