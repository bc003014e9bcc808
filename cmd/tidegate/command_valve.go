package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"tidegate/cmd/tidegate/internal/daemon"
)

// runValve is `tidegate valve METER open|close`: through the running
// daemon, which sends the write on the meter's bus between polls, checks
// the answer and reads the status back. Only for meters with valve: true.
func runValve(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("valve", e)
	socket := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	// The socket tells the daemon the caller's uid; under sudo that is
	// root, so the person is named too (the valve event's operator).
	operator := fs.String("operator", os.Getenv("SUDO_USER"), "who asks, for the valve event (default: $SUDO_USER)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() != 2 || (fs.Arg(1) != "open" && fs.Arg(1) != "close") {
		return usageErrorf("usage: tidegate valve METER open|close   (CJ/T 188 meters with valve: true)")
	}
	request := "cli-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var j daemon.ValveJSON
	path := "/v1/valve?meter=" + url.QueryEscape(fs.Arg(0)) + "&action=" + fs.Arg(1) + "&request=" + request
	if *operator != "" {
		path += "&operator=" + url.QueryEscape(*operator)
	}
	if err := newAPIClient(socket()).getJSON(ctx, "POST", path, &j); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(j); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "meter %s: valve %s %s; valve now %s (request %s)\n", j.Meter, j.Action, j.Outcome, j.Valve, j.Request)
		if j.Error != "" {
			fmt.Fprintf(e.stdout, "  %s\n", j.Error)
		}
	}
	if j.Outcome != "done" {
		return fmt.Errorf("valve %s: %s", j.Action, j.Outcome)
	}
	return nil
}
