package salesforce

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Folder and suffix of ExtlClntAppGlobalOauthSettings in a Metadata zip.
const (
	globalOAuthType   = "ExtlClntAppGlobalOauthSettings"
	globalOAuthFolder = "extlClntAppGlobalOauthSets"
	globalOAuthSuffix = ".ecaGlblOauth"
	ecaType           = "ExternalClientApplication"
)

// Bounds of a retrieve zip held in memory.
const (
	maxZipBytes  = 4 << 20 // compressed
	maxZipFiles  = 64
	maxZipTotal  = 8 << 20 // uncompressed, all files
	errZipPrefix = "metadata zip"
)

// errZip is wrapped by every zip error.
var errZip = errors.New(errZipPrefix + ": malformed or too large")

// packageXML renders a package.xml naming members of one type.
func packageXML(typ, version string, members ...string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Package xmlns="` + metadataNS + `">` + "\n    <types>\n")
	for _, m := range members {
		b.WriteString("        <members>")
		_ = xml.EscapeText(&b, []byte(m))
		b.WriteString("</members>\n")
	}
	b.WriteString("        <name>" + typ + "</name>\n    </types>\n    <version>")
	_ = xml.EscapeText(&b, []byte(version))
	b.WriteString("</version>\n</Package>\n")
	return b.Bytes()
}

// deployZip builds the zip of one ExtlClntAppGlobalOauthSettings deploy:
// package.xml and extlClntAppGlobalOauthSets/<name>.ecaGlblOauth, at the
// root (singlePackage).
func deployZip(fullName, version string, doc []byte) ([]byte, error) {
	if fullName == "" || strings.ContainsAny(fullName, `/\`) || fullName == "." || fullName == ".." {
		return nil, fmt.Errorf("%w: bad component name", errZip)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"package.xml", packageXML(globalOAuthType, version, fullName)},
		{globalOAuthFolder + "/" + fullName + globalOAuthSuffix, doc},
	} {
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// zipFiles reads every regular file of a retrieve zip into memory, bounded
// in size and count. Names are cleaned; a leading "unpackaged/" (or any
// single package folder) is kept as is for the caller to match.
func zipFiles(b []byte) (map[string][]byte, error) {
	if len(b) > maxZipBytes {
		return nil, errZip
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, errZip
	}
	if len(zr.File) > maxZipFiles {
		return nil, errZip
	}
	out := map[string][]byte{}
	total := 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		name := path.Clean(strings.ReplaceAll(f.Name, `\`, "/"))
		if strings.HasPrefix(name, "../") || strings.HasPrefix(name, "/") {
			return nil, errZip
		}
		rc, err := f.Open()
		if err != nil {
			return nil, errZip
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxComponentBytes+1))
		_ = rc.Close()
		if err != nil || len(data) > maxComponentBytes {
			return nil, errZip
		}
		total += len(data)
		if total > maxZipTotal {
			return nil, errZip
		}
		out[name] = data
	}
	return out, nil
}

// componentFile finds <folder>/<name><suffix> in a retrieve zip, at the
// root or under one package folder ("unpackaged/…").
func componentFile(files map[string][]byte, folder, name, suffix string) ([]byte, bool) {
	want := folder + "/" + name + suffix
	for n, data := range files {
		if n == want || strings.HasSuffix(n, "/"+want) && strings.Count(n, "/") == 2 {
			return data, true
		}
	}
	return nil, false
}
