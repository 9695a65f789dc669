package testbed

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// randomBytes returns n bytes from crypto/rand, which never fails on the
// platforms Go supports (it panics internally instead of returning an error).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// randomHex returns n random bytes as lowercase hex (2n characters).
func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// randomSecret returns 32 random bytes in standard base64, the shape
// `openssl rand -base64 32` gives.
func randomSecret() string { return base64.StdEncoding.EncodeToString(randomBytes(32)) }

// randomUUID returns a random version-4 UUID string, the shape of a Lambda
// RevisionId.
func randomUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
