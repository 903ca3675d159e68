package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The largest objects Longhorn's CRDs let through (tests/data/longhorn/crds-*.yaml: no
// maxLength, maxItems or maxProperties on these fields; sourceType and dataEngine are enums):
// one field as large as the 3 MiB request allows, or a map with as many entries as fit.
// metadata is validated by the API server first: a name of at most 253 characters, labels
// with valid keys and values.

type worstCase struct {
	name string
	vars map[string]any
}

// Room for the rest of the object beside the one large field.
const big = maxRequestBytes - 4096

var sourceTypes = []string{"download", "upload", "export-from-volume", "restore", "clone"}

// The parameters each source type's rules read, and one no rule knows (LHB102 lists it).
var parameters = map[string][]string{
	"download":           {"url", "unknown"},
	"upload":             {"unknown"},
	"export-from-volume": {"volume-name", "export-type", "unknown"},
	"restore":            {"backup-url", "concurrent-limit", "backup-target-name", "unknown"},
	"clone":              {"backing-image", "encryption", "secret", "secret-namespace", "unknown"},
}

// Large values that take each check down its longest path.
var fills = map[string]string{
	"letters":    strings.Repeat("a", big),
	"spaces":     strings.Repeat(" ", big),
	"digits":     strings.Repeat("1", big),
	"http URL":   "http://" + strings.Repeat("a", big-7),
	"http path":  "http://example.com/" + strings.Repeat("a", big-19),
	"backup URL": "s3://bucket@us-east-1/" + strings.Repeat("a", big-40) + "?backingImage=x",
	// At the policy's own bounds (MAX_CEL_PARAMETER, MAX_CEL_URL), where its patterns run.
	"backup URL of 4096": "s3://bucket@us-east-1/" + strings.Repeat("a", 4096-37) + "?backingImage=x",
	"http URL of 8192":   "http://" + strings.Repeat("1", 8192-7),
	"URL path of 8192":   "http://example.com/" + strings.Repeat("a", 8192-19),
}

func name() string { return strings.Repeat("n", 253) }

func backingImage(sourceType string) map[string]any {
	return map[string]any{
		"apiVersion": "longhorn.io/v1beta2",
		"kind":       "BackingImage",
		"metadata":   map[string]any{"name": name(), "namespace": "longhorn-system"},
		"spec": map[string]any{
			"sourceType":        sourceType,
			"checksum":          strings.Repeat("f", 128),
			"minNumberOfCopies": int64(1),
			"dataEngine":        "v1",
			"sourceParameters":  map[string]any{},
		},
	}
}

func backup() map[string]any {
	return map[string]any{
		"apiVersion": "longhorn.io/v1beta2",
		"kind":       "BackupBackingImage",
		"metadata":   map[string]any{"name": name(), "namespace": "longhorn-system"},
		"spec":       map[string]any{"backingImage": name(), "userCreated": true},
	}
}

// manyEntries fills a map with as many short distinct keys as fit in the request.
func manyEntries(value string) map[string]any {
	m := map[string]any{}
	size := 0
	for i := 0; size < big; i++ {
		key := fmt.Sprintf("k%x", i)
		m[key] = value
		size += len(key) + len(value) + 6 // "key":"value",
	}
	return m
}

// longestLabels: as many labels as the policy judges (MAX_CEL_LABELS), each with the longest
// valid key (a 253-character DNS subdomain, '/', a 63-character name) and value.
func longestLabels() map[string]any {
	segment := strings.Repeat("a", 62)
	prefix := strings.Join([]string{segment, segment, segment, segment}, ".")[:249] + ".com"
	labels := map[string]any{}
	for i := 0; i < 256; i++ {
		name := fmt.Sprintf("%063d", i)
		labels[prefix+"/"+name] = strings.Repeat("v", 63)
	}
	return labels
}

func spec(obj map[string]any) map[string]any { return obj["spec"].(map[string]any) }

func worstObjects() map[string]map[string]any {
	objects := map[string]map[string]any{}
	for _, st := range sourceTypes {
		for _, key := range parameters[st] {
			for fill, value := range fills {
				obj := backingImage(st)
				spec(obj)["sourceParameters"] = map[string]any{key: value}
				objects[fmt.Sprintf("%s: sourceParameters.%s of %s", st, key, fill)] = obj
			}
		}
		obj := backingImage(st)
		spec(obj)["sourceParameters"] = manyEntries("")
		objects[st+": sourceParameters with many entries"] = obj
		for _, field := range []string{"checksum", "secret", "secretNamespace"} {
			for _, fill := range []string{"letters", "spaces", "digits"} {
				obj := backingImage(st)
				spec(obj)[field] = fills[fill]
				objects[fmt.Sprintf("%s: spec.%s of %s", st, field, fill)] = obj
			}
		}
		obj = backingImage(st)
		obj["metadata"].(map[string]any)["labels"] = manyEntries("v")
		objects[st+": metadata.labels with many entries"] = obj
	}
	for _, field := range []string{"backingImage", "backupTargetName"} {
		for _, fill := range []string{"letters", "spaces"} {
			obj := backup()
			spec(obj)[field] = fills[fill]
			objects[fmt.Sprintf("backup: spec.%s of %s", field, fill)] = obj
		}
	}
	obj := backup()
	spec(obj)["labels"] = manyEntries("v")
	objects["backup: spec.labels with many entries"] = obj
	obj = backup()
	spec(obj)["labels"] = longestLabels()
	objects["backup: spec.labels, 256 of the longest valid keys"] = obj
	obj = backup()
	spec(obj)["labels"] = map[string]any{"team": fills["letters"]}
	objects["backup: spec.labels with a large value"] = obj
	obj = backup()
	obj["metadata"].(map[string]any)["labels"] = manyEntries("v")
	objects["backup: metadata.labels with many entries"] = obj
	return objects
}

// worstCases: each object as a CREATE, as an UPDATE of itself (both sides large), and as an
// UPDATE that replaces it with a small object (the stored side large).
func worstCases() []worstCase {
	request := map[string]any{"userInfo": map[string]any{"username": "kubernetes-admin"}}
	var cases []worstCase
	for label, obj := range worstObjects() {
		if size := jsonSize(obj); size > maxRequestBytes {
			panic(fmt.Sprintf("%s is %d bytes, over the request limit", label, size))
		}
		small := backup()
		if obj["kind"] == "BackingImage" {
			small = backingImage(spec(obj)["sourceType"].(string))
		}
		cases = append(cases,
			worstCase{label + " (create)", vars(obj, nil, request)},
			worstCase{label + " (update, unchanged)", vars(obj, obj, request)},
			worstCase{label + " (update from it)", vars(small, obj, request)},
		)
	}
	return cases
}

func vars(obj, old map[string]any, request map[string]any) map[string]any {
	var oldValue any // null on CREATE, as in the API server
	if old != nil {
		oldValue = old
	}
	return map[string]any{"object": obj, "oldObject": oldValue, "request": request}
}

func jsonSize(obj map[string]any) int {
	data, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return len(data)
}

func largest(cases []worstCase) int {
	most := 0
	for _, c := range cases {
		if n := jsonSize(c.vars["object"].(map[string]any)); n > most {
			most = n
		}
	}
	return most
}
