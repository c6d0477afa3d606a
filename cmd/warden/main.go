// Command warden is the Warden control plane, enforcement gate and operator CLI.
package main

import (
	"os"

	"github.com/warden-a2a/warden/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
