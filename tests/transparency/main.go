// An independent check of the audit trail's transparency log, with the Go implementations that
// Certificate Transparency and Go's checksum database use: golang.org/x/mod/sumdb/note for the
// signed checkpoint, github.com/transparency-dev/merkle for RFC 6962 proofs. Reads what to check
// as JSON on standard input; prints one JSON object per check; exits 1 when any fails.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type inclusion struct {
	Index  uint64   `json:"index"`
	Size   uint64   `json:"size"`
	Leaf   string   `json:"leaf"`
	Hashes []string `json:"hashes"`
}

type consistency struct {
	OldNote string   `json:"old_note"`
	Hashes  []string `json:"hashes"`
}

type input struct {
	VerifierKey string        `json:"verifier_key"`
	Note        string        `json:"note"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

type checkpoint struct {
	origin string
	size   uint64
	root   []byte
}

func openCheckpoint(text string, verifiers note.Verifiers) (checkpoint, error) {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return checkpoint{}, fmt.Errorf("not a checkpoint")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		return checkpoint{}, err
	}
	return checkpoint{lines[0], size, root}, nil
}

func decode(hashes []string) ([][]byte, error) {
	out := make([][]byte, len(hashes))
	for i, h := range hashes {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func report(w *bufio.Writer, check string, err error) bool {
	result := map[string]any{"check": check, "ok": err == nil}
	if err != nil {
		result["error"] = err.Error()
	}
	line, _ := json.Marshal(result)
	w.Write(append(line, '\n'))
	return err == nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "cannot read the input:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	ok := true
	verifier, err := note.NewVerifier(in.VerifierKey)
	if !report(out, "verifier key", err) {
		out.Flush()
		os.Exit(1)
	}
	verifiers := note.VerifierList(verifier)
	head, err := openCheckpoint(in.Note, verifiers)
	ok = report(out, "checkpoint signature", err) && ok
	hasher := rfc6962.DefaultHasher
	for _, inc := range in.Inclusion {
		leaf, err := base64.StdEncoding.DecodeString(inc.Leaf)
		if err == nil {
			var hashes [][]byte
			if hashes, err = decode(inc.Hashes); err == nil {
				err = proof.VerifyInclusion(hasher, inc.Index, inc.Size, hasher.HashLeaf(leaf), hashes, head.root)
			}
		}
		ok = report(out, fmt.Sprintf("inclusion of leaf %d in %d", inc.Index, inc.Size), err) && ok
	}
	for _, con := range in.Consistency {
		old, err := openCheckpoint(con.OldNote, verifiers)
		if err == nil {
			var hashes [][]byte
			if hashes, err = decode(con.Hashes); err == nil {
				err = proof.VerifyConsistency(hasher, old.size, head.size, hashes, old.root, head.root)
			}
		}
		ok = report(out, fmt.Sprintf("consistency of %d with %d", old.size, head.size), err) && ok
	}
	if !ok {
		out.Flush()
		os.Exit(1)
	}
}
