package main

import (
	"encoding/json"
	"fmt"

	"tidegate/protocol/cjt188"
)

// decodeCJT188 prints one CJ/T 188 frame as the flat object of
// cjt188.Describe. Preamble and stray bytes before 68 are skipped; bytes
// after the end byte are shown as "trailing", not refused, since radio
// modules append them to good frames.
func decodeCJT188(e *env, raw []byte) error {
	d, err := cjt188.Describe(raw, cjt188.DescribeOptions{})
	if err != nil {
		return usageError(err)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
