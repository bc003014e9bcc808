// Package modbus is tidegate's pure Modbus codec: register values in every
// type and word order, the totaliser pairs ultrasonic meters use, meter
// profiles (register maps as data), and the slave side of RTU framing for the
// simulator. No I/O and no clocks: bytes and registers in, values out. The
// gateway's client side is github.com/goburrow/modbus (see drivers/modbus).
package modbus
