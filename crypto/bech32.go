package crypto

// bech32Encode returns the Bech32 encoding (BIP 173) of data under the
// human-readable part hrp, in lowercase.
//
// It exists because age parses its secret keys only from their Bech32
// text (age.ParseX25519Identity, age.ParseHybridIdentity) and keeps its
// encoder in an internal package, while the source's reply identity is
// derived, not generated: its 32-byte seed must be written as age's key
// text before age can use it. The well-kept Bech32 packages outside age
// come with a cryptocurrency library's dependencies, for twenty lines of
// arithmetic. Only encoding is needed: age itself decodes and checks the
// result. TestBech32 pins it to BIP 173's vectors and to age's own
// encoder (a derived key's text is what age's String gives back).
//
// Unlike BIP 173 it does not cap the length at 90 characters (age's keys
// do not either; ours are at most 77).
func bech32Encode(hrp string, data []byte) string {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	// Regroup the bytes as 5-bit values, padding the last with zero bits.
	values := make([]byte, 0, (len(data)*8+4)/5)
	var acc, bits uint
	for _, b := range data {
		acc = acc<<8 | uint(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			values = append(values, byte(acc>>bits&31))
		}
	}
	if bits > 0 {
		values = append(values, byte(acc<<(5-bits)&31))
	}
	// The checksum is over the expanded hrp, the values and six zeros.
	check := make([]byte, 0, 2*len(hrp)+1+len(values)+6)
	for i := 0; i < len(hrp); i++ {
		check = append(check, hrp[i]>>5)
	}
	check = append(check, 0)
	for i := 0; i < len(hrp); i++ {
		check = append(check, hrp[i]&31)
	}
	check = append(check, values...)
	check = append(check, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(check) ^ 1
	out := make([]byte, 0, len(hrp)+1+len(values)+6)
	out = append(out, hrp...)
	out = append(out, '1')
	for _, v := range values {
		out = append(out, charset[v])
	}
	for i := 0; i < 6; i++ {
		out = append(out, charset[mod>>(5*(5-i))&31])
	}
	return string(out)
}

// bech32Polymod is BIP 173's checksum function.
func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if top>>i&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}
