package crypto

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sethvargo/go-diceware/diceware"
	"golang.org/x/crypto/argon2"
)

// A codename is the source's only long-lived secret (DESIGN.md §2,
// "Source"): words of EFF's large diceware list (7,776 words, about 12.9
// bits each), lowercase, separated by single spaces. It is memorised, never
// stored; the keys derived from it are recomputed at each use.
const (
	// CodenameWords is how many words GenerateCodename picks and the fewest
	// ParseCodename accepts: 7 words of 7,776 are about 90 bits, out of
	// reach of an offline guesser even before the memory-hard KDF.
	CodenameWords = 7
	// maxCodenameWords caps the words ParseCodename accepts; a person may
	// choose a longer codename, but not an unbounded one.
	maxCodenameWords = 16
	// maxCodenameInput caps what ParseCodename reads before any work: 16
	// words of at most 9 letters with generous spacing fit easily.
	maxCodenameInput = 1024
)

// ErrBadCodename: what a person typed is not a codename (too few or too
// many words, or a word that is not in the list). Its messages say which
// position is wrong, never the word: the codename is a secret.
var ErrBadCodename = errors.New("malformed codename")

// codenameWordSet is EFF's large word list as a set. go-diceware exposes
// the list only as WordAt(dice roll), so the set is built by walking every
// roll of five dice (11111 to 66666).
var codenameWordSet = sync.OnceValue(func() map[string]struct{} {
	list := diceware.WordListEffLarge()
	set := make(map[string]struct{}, 7776)
	var walk func(digits, roll int)
	walk = func(digits, roll int) {
		if digits == 0 {
			set[list.WordAt(roll)] = struct{}{}
			return
		}
		for d := 1; d <= 6; d++ {
			walk(digits-1, roll*10+d)
		}
	}
	walk(list.Digits(), 0)
	delete(set, "") // a roll missing from the list; there is none in v0.6.0
	return set
})

// GenerateCodename returns a fresh codename: CodenameWords distinct words of
// EFF's large list, chosen with crypto/rand, lowercase, separated by single
// spaces. (Requiring distinct words costs under 0.004 bits of the 90.)
func GenerateCodename() (string, error) {
	words, err := diceware.GenerateWithWordList(CodenameWords, diceware.WordListEffLarge())
	if err != nil {
		return "", fmt.Errorf("codename: %w", err)
	}
	return strings.Join(words, " "), nil
}

// ParseCodename normalises a codename as a person types it: leading and
// trailing space dropped, lowercase, every run of white space (Unicode's
// definition, so a no-break space too) made one space. It refuses, with
// ErrBadCodename, fewer than CodenameWords or more than 16 words, more than
// 1,024 bytes, and any word that is not in EFF's large list; the error names
// the word's position, never the word.
func ParseCodename(s string) (string, error) {
	if len(s) > maxCodenameInput {
		return "", fmt.Errorf("%w: %d bytes typed, at most %d", ErrBadCodename, len(s), maxCodenameInput)
	}
	words := strings.Fields(strings.ToLower(s))
	if len(words) < CodenameWords {
		return "", fmt.Errorf("%w: %d words typed, at least %d needed", ErrBadCodename, len(words), CodenameWords)
	}
	if len(words) > maxCodenameWords {
		return "", fmt.Errorf("%w: %d words typed, at most %d", ErrBadCodename, len(words), maxCodenameWords)
	}
	set := codenameWordSet()
	for i, w := range words {
		if _, ok := set[w]; !ok {
			return "", fmt.Errorf("%w: word %d of %d is not in the EFF large word list", ErrBadCodename, i+1, len(words))
		}
	}
	return strings.Join(words, " "), nil
}

// OutboxKDFDomain separates the outbox key from every other key derived
// from the codename (the reply identity, the mailbox id): the KDF input
// starts with it.
const OutboxKDFDomain = "fieldtip/outbox/v1"

// CodenameKDF is an Argon2id cost. Threads are always 1: a cheap phone has
// few cores, and a guesser gains nothing from our parallelism.
type CodenameKDF struct {
	// MemoryKiB is the memory in KiB, at least 8.
	MemoryKiB uint32
	// Time is the number of passes over the memory, at least 1.
	Time uint32
}

// DefaultCodenameKDF is the cost of the outbox key in format v1 (RFC 9106
// §4, second recommended option, with one thread): 64 MiB, 3 passes. It is
// fixed by the format version, not recorded in the outbox file.
var DefaultCodenameKDF = CodenameKDF{MemoryKiB: 64 << 10, Time: 3}

// DeriveOutboxKey derives the key of an outbox from a codename (as
// ParseCodename returns it) and the outbox's salt:
//
//	Argon2id(password = OutboxKDFDomain ‖ 0x00 ‖ codename, salt,
//	         time = kdf.Time, memory = kdf.MemoryKiB, threads = 1, length = 32)
//
// It panics if kdf.Time is 0 or kdf.MemoryKiB is below 8, which only a
// programming error can cause.
func DeriveOutboxKey(codename string, salt [32]byte, kdf CodenameKDF) [32]byte {
	if kdf.Time < 1 || kdf.MemoryKiB < 8 {
		panic(fmt.Sprintf("crypto: outbox KDF cost time=%d memory=%d KiB is below Argon2's minimum (time 1, memory 8 KiB)", kdf.Time, kdf.MemoryKiB))
	}
	password := make([]byte, 0, len(OutboxKDFDomain)+1+len(codename))
	password = append(password, OutboxKDFDomain...)
	password = append(password, 0)
	password = append(password, codename...)
	var key [32]byte
	copy(key[:], argon2.IDKey(password, salt[:], kdf.Time, kdf.MemoryKiB, 1, 32))
	clear(password)
	return key
}
