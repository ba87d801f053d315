// Command hubble-test-matchpattern writes the table of Cilium's own matchPattern answers that
// hubble-noise's fqdn matcher is tested against (tests/fixtures/matchpattern/table.tsv).
//
//	hubble-test-matchpattern -patterns patterns.txt -names names.txt > table.tsv
//
// For every pattern it says whether Cilium's CRD accepts it (the `matchPattern` schema pattern
// and length) and, for every name, whether the pattern selects it the way a toFQDNs selector
// does: matchpattern.ToAnchoredRegexp(matchpattern.Sanitize(pattern)) against
// strings.ToLower(dns.FQDN(name)). Input files hold one value per line; lines starting with
// "#" and empty lines are skipped.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/cilium/cilium/pkg/fqdn/dns"
	"github.com/cilium/cilium/pkg/fqdn/matchpattern"
	"github.com/cilium/cilium/pkg/policy/api"
)

func lines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := s.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out, s.Err()
}

func main() {
	patternsPath := flag.String("patterns", "", "file of patterns, one a line")
	namesPath := flag.String("names", "", "file of names, one a line")
	flag.Parse()
	patterns, err := lines(*patternsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	names, err := lines(*namesPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	crd := regexp.MustCompile(api.FQDNMatchPatternRegexString)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w, "# Cilium v1.19.4's answers: pattern, name, whether the CRD accepts the pattern, whether it selects the name.")
	fmt.Fprintln(w, "# Written by tests/peers/matchpattern (Cilium's own Go code); do not edit by hand.")
	for _, p := range patterns {
		valid := crd.MatchString(p) && len(p) <= matchpattern.MaxFQDNLength
		var re *regexp.Regexp
		if valid {
			re, err = matchpattern.ValidateWithoutCache(matchpattern.Sanitize(p))
			if err != nil {
				fmt.Fprintf(os.Stderr, "pattern %q: %v\n", p, err)
				os.Exit(1)
			}
		}
		for _, n := range names {
			m := "-"
			if re != nil {
				m = "0"
				if re.MatchString(strings.ToLower(dns.FQDN(n))) {
					m = "1"
				}
			}
			v := "0"
			if valid {
				v = "1"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p, n, v, m)
		}
	}
}
