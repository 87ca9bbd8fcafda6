package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/portcullis-waf/portcullis/config"
)

// cmdSchema prints the JSON Schema of the configuration file, for editors
// (yaml-language-server: `# yaml-language-server: $schema=portcullis.schema.json`).
func cmdSchema(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q", pos[0])
	}
	b, err := json.MarshalIndent(config.JSONSchema(), "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "portcullis schema:", err)
		return 1
	}
	_, _ = stdout.Write(append(b, '\n'))
	return 0
}
