package salesforce

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Field names of ExtlClntAppGlobalOauthSettings the client reads or sets.
const (
	fieldRotateKey    = "shouldRotateConsumerKey"
	fieldRotateSecret = "shouldRotateConsumerSecret"
)

// maxComponentBytes bounds one component file read from a retrieve zip.
const maxComponentBytes = 256 << 10

// globalOAuthDoc is the part of an .ecaGlblOauth file the client reads.
// Everything else in the file is carried through untouched as bytes.
type globalOAuthDoc struct {
	XMLName      xml.Name `xml:"ExtlClntAppGlobalOauthSettings"`
	ECA          string   `xml:"externalClientApplication"`
	Key          string   `xml:"consumerKey"`
	Secret       string   `xml:"consumerSecret"`
	RotateKey    string   `xml:"shouldRotateConsumerKey"`
	RotateSecret string   `xml:"shouldRotateConsumerSecret"`
}

// errComponent is wrapped by every parse error of a component file.
var errComponent = errors.New("malformed ExtlClntAppGlobalOauthSettings file")

// parseGlobalOAuth reads the fields the engine needs from an .ecaGlblOauth
// file. It never puts file content into an error (the file may carry the
// consumer secret).
func parseGlobalOAuth(b []byte) (globalOAuthDoc, error) {
	if len(b) > maxComponentBytes {
		return globalOAuthDoc{}, fmt.Errorf("%w: over %d bytes", errComponent, maxComponentBytes)
	}
	var d globalOAuthDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	if err := dec.Decode(&d); err != nil {
		return globalOAuthDoc{}, errComponent
	}
	for _, v := range []string{d.RotateKey, d.RotateSecret} {
		if strings.TrimSpace(v) == "" {
			continue
		}
		if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return globalOAuthDoc{}, fmt.Errorf("%w: rotate flag is not a boolean", errComponent)
		}
	}
	d.ECA, d.Key, d.Secret = strings.TrimSpace(d.ECA), strings.TrimSpace(d.Key), strings.TrimSpace(d.Secret)
	return d, nil
}

func xmlBool(s string) bool {
	v, _ := strconv.ParseBool(strings.TrimSpace(s))
	return v
}

// childSpan is the byte range of one top-level child element of a document.
type childSpan struct {
	name       string
	start, end int
}

// topLevelChildren returns the top-level child elements of doc's root with
// their byte ranges, and the offset of the root's end tag. It works on the
// raw bytes so that an edit can leave every other byte as it was.
func topLevelChildren(doc []byte) ([]childSpan, int, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	var kids []childSpan
	depth, rootEnd, rootOpenEnd := 0, -1, -1
	for {
		before := int(dec.InputOffset())
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, errComponent
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				rootOpenEnd = int(dec.InputOffset())
			}
			if depth == 2 {
				kids = append(kids, childSpan{name: t.Name.Local, start: before})
			}
		case xml.EndElement:
			if depth == 2 {
				kids[len(kids)-1].end = int(dec.InputOffset())
			}
			if depth == 1 {
				rootEnd = before
				if before == rootOpenEnd && bytes.HasSuffix(doc[:before], []byte("/>")) {
					// <Root/>: a component with no fields is not valid.
					return nil, 0, errComponent
				}
			}
			depth--
			if depth < 0 {
				return nil, 0, errComponent
			}
		}
	}
	if rootEnd < 0 || depth != 0 {
		return nil, 0, errComponent
	}
	return kids, rootEnd, nil
}

// setRotateFlags returns doc with shouldRotateConsumerKey and
// shouldRotateConsumerSecret set to the given values and every other byte
// unchanged. A missing flag is inserted in alphabetical position among the
// root's children (Metadata API files list fields in that order, and one
// integrator saw out-of-order elements silently dropped).
func setRotateFlags(doc []byte, rotateKey, rotateSecret bool) ([]byte, error) {
	kids, rootEnd, err := topLevelChildren(doc)
	if err != nil {
		return nil, err
	}
	type edit struct {
		start, end, seq int
		text            string
	}
	var edits []edit
	for _, f := range []struct {
		name string
		on   bool
	}{{fieldRotateKey, rotateKey}, {fieldRotateSecret, rotateSecret}} {
		text := "<" + f.name + ">" + strconv.FormatBool(f.on) + "</" + f.name + ">"
		found := 0
		for _, k := range kids {
			if k.name == f.name {
				edits = append(edits, edit{k.start, k.end, len(edits), text})
				found++
			}
		}
		if found > 1 {
			return nil, fmt.Errorf("%w: %s appears %d times", errComponent, f.name, found)
		}
		if found == 1 {
			continue
		}
		// Insert before the first child that sorts after the flag, with the
		// whitespace that precedes that child; or after the last child,
		// with the whitespace that precedes it.
		at, ins := -1, ""
		for _, k := range kids {
			if k.name > f.name {
				at, ins = k.start, text+leadingSpace(doc, k.start)
				break
			}
		}
		if at < 0 {
			at, ins = rootEnd, text
			if n := len(kids); n > 0 {
				at, ins = kids[n-1].end, leadingSpace(doc, kids[n-1].start)+text
			}
		}
		edits = append(edits, edit{at, at, len(edits), ins})
	}
	// Apply from the end so earlier offsets stay valid; of two insertions
	// at the same point the later one goes first, so key stays before secret.
	sort.Slice(edits, func(i, j int) bool {
		if edits[i].start != edits[j].start {
			return edits[i].start > edits[j].start
		}
		return edits[i].seq > edits[j].seq
	})
	out := append([]byte(nil), doc...)
	for _, e := range edits {
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out, nil
}

// leadingSpace returns the run of XML whitespace that ends at doc[at].
func leadingSpace(doc []byte, at int) string {
	i := at
	for i > 0 && (doc[i-1] == ' ' || doc[i-1] == '\t' || doc[i-1] == '\n' || doc[i-1] == '\r') {
		i--
	}
	return string(doc[i:at])
}
