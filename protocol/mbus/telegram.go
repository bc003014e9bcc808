package mbus

import "fmt"

// Telegram is the decoded application layer of an RSP_UD long frame.
type Telegram struct {
	// Address is the link-layer primary address of the answering slave.
	Address byte
	CI      byte
	Header  Header
	Records []Record
	// MoreRecordsFollow is set when the telegram ends with DIF 1F: the
	// master should ask again (REQ_UD2 with toggled FCB) for the rest.
	MoreRecordsFollow bool
}

// DecodeTelegram decodes the application layer of a long frame. A CI 70
// answer is returned as an *ApplicationError. On a record error the
// telegram holds the header and the records before the bad one.
func DecodeTelegram(f Frame) (Telegram, error) {
	if f.Kind != KindLong && f.Kind != KindControl {
		return Telegram{}, fmt.Errorf("%w: %v frame", ErrNotLongFrame, f.Kind)
	}
	t, err := ParseApplication(f.CI, f.Data)
	t.Address = f.Address
	return t, err
}

// ParseApplication decodes the user data after CI for the CI values of
// variable data (72, 76, 78, 7A, 7E), fixed data (73, 77) and application
// errors (70).
func ParseApplication(ci byte, data []byte) (Telegram, error) {
	t := Telegram{CI: ci}
	var err error
	mode2 := false
	switch ci {
	case CIError:
		var code byte
		if len(data) > 0 {
			code = data[0]
		}
		return t, &ApplicationError{Code: code}
	case CIVariableLong, CIVariableLongMode2:
		mode2 = ci == CIVariableLongMode2
		t.Header, err = parseLongHeader(data)
		if err != nil {
			return t, err
		}
		data = data[LongHeaderLen:]
	case CIVariableShort, CIVariableShortMode2:
		mode2 = ci == CIVariableShortMode2
		t.Header, err = parseShortHeader(data)
		if err != nil {
			return t, err
		}
		data = data[ShortHeaderLen:]
	case CIVariableNone:
	case CIFixed, CIFixedMode2:
		return parseFixed(ci, data)
	default:
		return t, fmt.Errorf("%w: 0x%02X", ErrCI, ci)
	}
	t.Records, err = parseRecords(data, mode2)
	if n := len(t.Records); n > 0 && t.Records[n-1].Function == FuncMoreRecords {
		t.MoreRecordsFollow = true
	}
	return t, err
}
