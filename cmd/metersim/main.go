// Command metersim runs virtual water meters on pseudo-terminals and TCP.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "metersim: the simulator is not built yet (issue 3)")
	os.Exit(2)
}
