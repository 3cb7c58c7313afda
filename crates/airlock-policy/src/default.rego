# airlock's built-in import policy. Replace it with `airlockd import --policy FILE` or the
# `policy:` key of DATA/config.yaml. A policy is any Rego v1 module in package airlock.import
# that defines `deny`, a set of messages; the bundle is admitted when `deny` is empty.
#
# input = {
#   "bundle":   the signed bundle manifest (name, version, channel, sequence, artifacts, ...),
#   "bundleId": "sha256:...",
#   "signers":  [key ids of the distinct trusted signers],
#   "volume":   volume number being imported,
#   "findings": [scan findings: {"artifact", "file", "member", "rule", "global", "key",
#                "severity", "detail"}],
#   "waivers":  [signed waivers from the bundle manifest],
# }
package airlock.import

import rego.v1

# Bundles for production need more agreement than any other channel.
deny contains msg if {
	input.bundle.channel == "production"
	count(input.signers) < 2
	msg := sprintf("channel production requires at least 2 distinct trusted signers; this bundle has %d", [count(input.signers)])
}

# Scanner verdicts: malicious and invalid content is never admitted.
deny contains msg if {
	some f in input.findings
	f.severity in {"malicious", "invalid"}
	msg := sprintf("%s finding %s in %s (%s)", [f.severity, f.rule, f.artifact, f.file])
}

# Suspicious content is admitted only with a signed waiver naming the artifact and the
# finding's key (its rule, or rule:global), and the file when the waiver names one.
deny contains msg if {
	some f in input.findings
	f.severity == "suspicious"
	not waived(f)
	msg := sprintf("suspicious finding %s in %s (%s) has no waiver", [f.key, f.artifact, f.file])
}

waived(f) if {
	some w in input.waivers
	w.artifact == f.artifact
	w.finding == f.key
	not w.file
}

waived(f) if {
	some w in input.waivers
	w.artifact == f.artifact
	w.finding == f.key
	w.file == f.file
}

# Images are served under the name they carry: it must be a fully qualified reference.
deny contains msg if {
	some a in input.bundle.artifacts
	a.kind == "image"
	not contains(a.name, "/")
	msg := sprintf("image name %s is not fully qualified (HOST/PATH:TAG)", [a.name])
}
