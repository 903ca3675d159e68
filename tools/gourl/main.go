// Command gourl prints what Go's net/url.ParseRequestURI makes of each URL on standard input
// (a JSON list of strings), as JSON: the answers tests/test_go_url.py holds engine/go_url.py
// to. Run by hand (no dependency beyond the standard library):
//
//	python -m tests.go_url_cases | GO111MODULE=off go run tools/gourl/main.go \
//		> tests/data/go_url_cases.json
package main

import (
	"encoding/json"
	"net/url"
	"os"
	"runtime"
)

type answer struct {
	URL      string `json:"url"`
	OK       bool   `json:"ok"`
	Scheme   string `json:"scheme"`
	Host     string `json:"host"`
	Hostname string `json:"hostname"`
}

func main() {
	var urls []string
	if err := json.NewDecoder(os.Stdin).Decode(&urls); err != nil {
		panic(err)
	}
	out := struct {
		Go      string   `json:"go"`
		Answers []answer `json:"answers"`
	}{Go: runtime.Version()}
	for _, raw := range urls {
		a := answer{URL: raw}
		if u, err := url.ParseRequestURI(raw); err == nil {
			a.OK, a.Scheme, a.Host, a.Hostname = true, u.Scheme, u.Host, u.Hostname()
		}
		out.Answers = append(out.Answers, a)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
