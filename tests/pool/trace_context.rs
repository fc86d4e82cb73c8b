//! W3C Trace Context, checked against the specification's own material:
//! w3c/trace-context at acab820be9db7b3433668baa5cdd43f57f4c4be0, the
//! examples in spec/20-http_request_header_format.md and
//! spec/30-processing-model.md, and the cases of its conformance harness,
//! test/test.py (`TraceContextTest`). Each row names where it comes from.
//! The harness drives a service; here its header values go straight to the
//! parser, with what the harness expects of them: kept (the same trace id)
//! or ignored (a new trace).

use poolscope::correlation::{SpanId, TraceContextError, TraceFlags, TraceParent, TraceState};

const ID: &str = "12345678901234567890123456789012";

/// `traceparent` values and whether the trace they name is kept.
const TRACEPARENTS: &[(&str, &str, bool)] = &[
    // spec/20 "Examples of HTTP traceparent Headers".
    (
        "spec/20 L209",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        true,
    ),
    (
        "spec/20 L219",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        true,
    ),
    // spec/30 L57, L76.
    (
        "spec/30 L57",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-d75597dee50b0cac-01",
        true,
    ),
    (
        "spec/30 L76",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-d75597dee50b0cac-00",
        true,
    ),
    // test.py test_traceparent_included_tracestate_missing, L143.
    (
        "test.py L143",
        "00-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    // test_traceparent_version_0x00, L201, L206.
    (
        "test.py L201",
        "00-12345678901234567890123456789012-1234567890123456-01.",
        false,
    ),
    (
        "test.py L206",
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        false,
    ),
    // test_traceparent_version_0xcc, L216, L221, L226.
    (
        "test.py L216",
        "cc-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "test.py L221",
        "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        true,
    ),
    (
        "test.py L226",
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
        false,
    ),
    // test_traceparent_version_0xff, L236.
    (
        "test.py L236",
        "ff-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    // test_traceparent_version_illegal_characters, L246, L251.
    (
        "test.py L246",
        ".0-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "test.py L251",
        "0.-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    // test_traceparent_version_too_long / too_short, L261, L266, L276.
    (
        "test.py L261",
        "000-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "test.py L266",
        "0000-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "test.py L276",
        "0-12345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    // test_traceparent_trace_id_*, L286-323.
    (
        "test.py L286",
        "00-00000000000000000000000000000000-1234567890123456-01",
        false,
    ),
    (
        "test.py L296",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        false,
    ),
    (
        "test.py L301",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        false,
    ),
    (
        "test.py L311",
        "00-123456789012345678901234567890123-1234567890123456-01",
        false,
    ),
    (
        "test.py L323",
        "00-1234567890123456789012345678901-1234567890123456-01",
        false,
    ),
    // test_traceparent_parent_id_*, L333-368.
    (
        "test.py L333",
        "00-12345678901234567890123456789012-0000000000000000-01",
        false,
    ),
    (
        "test.py L343",
        "00-12345678901234567890123456789012-.234567890123456-01",
        false,
    ),
    (
        "test.py L348",
        "00-12345678901234567890123456789012-123456789012345.-01",
        false,
    ),
    (
        "test.py L358",
        "00-12345678901234567890123456789012-12345678901234567-01",
        false,
    ),
    (
        "test.py L368",
        "00-12345678901234567890123456789012-123456789012345-01",
        false,
    ),
    // test_traceparent_trace_flags_*, L378-395.
    (
        "test.py L378",
        "00-12345678901234567890123456789012-1234567890123456-.0",
        false,
    ),
    (
        "test.py L383",
        "00-12345678901234567890123456789012-1234567890123456-0.",
        false,
    ),
    (
        "test.py L393",
        "00-12345678901234567890123456789012-1234567890123456-001",
        false,
    ),
    (
        "test.py L403",
        "00-12345678901234567890123456789012-1234567890123456-1",
        false,
    ),
    // test_traceparent_ows_handling, L407-431.
    (
        "test.py L413",
        " 00-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "test.py L418",
        "\t00-12345678901234567890123456789012-1234567890123456-01",
        true,
    ),
    (
        "test.py L423",
        "00-12345678901234567890123456789012-1234567890123456-01 ",
        true,
    ),
    (
        "test.py L428",
        "00-12345678901234567890123456789012-1234567890123456-01\t",
        true,
    ),
    (
        "test.py L433",
        "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
        true,
    ),
    // The ABNF's HEXDIGLC: upper case is not hex here.
    (
        "spec/20 L74",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        false,
    ),
];

#[test]
fn traceparent_values_are_kept_or_ignored_as_the_specification_says() {
    for (source, value, kept) in TRACEPARENTS {
        let parsed = value.parse::<TraceParent>();
        assert_eq!(parsed.is_ok(), *kept, "{source}: {value:?} -> {parsed:?}");
        if let Ok(parent) = parsed {
            // The trace is the one sent, and it is written back as version 00.
            let expected_id = &value.trim_matches([' ', '\t'])[3..35];
            assert_eq!(parent.trace_id.to_string(), expected_id, "{source}");
            let written = parent.to_string();
            assert_eq!(written.len(), 55, "{source}: {written}");
            assert!(written.starts_with("00-"), "{source}: {written}");
            assert_eq!(written.parse::<TraceParent>(), Ok(parent), "{source}");
        }
    }
}

#[test]
fn the_flags_keep_sampled_and_random_and_drop_the_reserved_bits() {
    // spec/20 L132: 01 and 03 are both sampled; 02 and 03 both random.
    let flags = |f: &str| {
        format!("00-{ID}-1234567890123456-{f}")
            .parse::<TraceParent>()
            .unwrap()
            .flags
    };
    assert!(flags("01").sampled() && !flags("01").random());
    assert!(flags("03").sampled() && flags("03").random());
    assert!(!flags("02").sampled() && flags("02").random());
    // spec/20 L200, "Other Flags": vendors MUST set them to zero.
    let reserved = format!("00-{ID}-1234567890123456-ff")
        .parse::<TraceParent>()
        .unwrap();
    assert_eq!(reserved.flags, TraceFlags::from_bits(0x03));
    assert!(reserved.to_string().ends_with("-03"));
    assert_eq!(TraceFlags::SAMPLED.with_sampled(false).bits(), 0);
}

#[test]
fn errors_say_which_field_is_wrong() {
    let err = |v: &str| v.parse::<TraceParent>().unwrap_err();
    assert_eq!(
        err(&format!("ff-{ID}-1234567890123456-01")),
        TraceContextError::Version
    );
    assert_eq!(
        err(&format!("00-{ID}-1234567890123456-01.")),
        TraceContextError::Shape
    );
    assert_eq!(
        err("00-00000000000000000000000000000000-1234567890123456-01"),
        TraceContextError::TraceId
    );
    assert_eq!(
        err(&format!("00-{ID}-0000000000000000-01")),
        TraceContextError::ParentId
    );
    assert_eq!(
        err(&format!("00-{ID}-1234567890123456-0x")),
        TraceContextError::Flags
    );
    assert!(SpanId::from_u64(0).is_none());
}

/// Key/value pairs, left-most first.
type Members = Vec<(String, String)>;

/// Where a case comes from, the `tracestate` fields in the order sent, and
/// the members the harness expects kept (`None`: the header is ignored).
type Case = (&'static str, Vec<String>, Option<Members>);

fn tracestates() -> Vec<Case> {
    let pairs = |p: &[(&str, &str)]| {
        Some(
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    let fields = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // test_tracestate_all_allowed_characters, L599-631.
    let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let vendor_key = format!("{key}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x2b)
        .chain(0x2d..=0x3c)
        .chain(0x3e..=0x7e)
        .map(char::from)
        .collect();
    // test_tracestate_member_count_limit, L765-792.
    let first30 = [
        "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
        "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
        "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
    ];
    let thirty_two: Members = (1..=32)
        .map(|i| (format!("bar{i:02}"), format!("{i:02}")))
        .collect();
    let mut with_32 = fields(&first30);
    with_32.push("bar31=31,bar32=32".into());
    let mut with_33 = fields(&first30);
    with_33.push("bar31=31,bar32=32,bar33=33".into());
    vec![
        // spec/20 "Examples of tracestate HTTP Headers".
        (
            "spec/20 L343",
            fields(&["rojo=00f067aa0ba902b7"]),
            pairs(&[("rojo", "00f067aa0ba902b7")]),
        ),
        (
            "spec/20 L349",
            fields(&["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]),
            pairs(&[("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]),
        ),
        // test_tracestate_header_name / empty header, L505-538.
        ("test.py L505", fields(&["foo=1"]), pairs(&[("foo", "1")])),
        ("test.py L517", fields(&[""]), pairs(&[])),
        (
            "test.py L524",
            fields(&["foo=1", ""]),
            pairs(&[("foo", "1")]),
        ),
        (
            "test.py L533",
            fields(&["", "foo=1"]),
            pairs(&[("foo", "1")]),
        ),
        // test_tracestate_multiple_headers_different_keys, L540-561.
        (
            "test.py L547",
            fields(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
            pairs(&[
                ("foo", "1"),
                ("bar", "2"),
                ("rojo", "1"),
                ("congo", "2"),
                ("baz", "3"),
            ]),
        ),
        // test_tracestate_duplicated_keys, L563-597: one of them kept.
        (
            "test.py L571",
            fields(&["foo=1,foo=1"]),
            pairs(&[("foo", "1")]),
        ),
        (
            "test.py L578",
            fields(&["foo=1,foo=2"]),
            pairs(&[("foo", "1")]),
        ),
        (
            "test.py L585",
            fields(&["foo=1", "foo=1"]),
            pairs(&[("foo", "1")]),
        ),
        (
            "test.py L593",
            fields(&["foo=1", "foo=2"]),
            pairs(&[("foo", "1")]),
        ),
        (
            "test.py L621",
            vec![format!("{key}={value}")],
            pairs(&[(key, &value)]),
        ),
        (
            "test.py L628",
            vec![format!("{vendor_key}={value}")],
            pairs(&[(&vendor_key, &value)]),
        ),
        // test_tracestate_ows_handling, L633-699.
        (
            "test.py L640",
            fields(&["foo=1 \t , \t bar=2, \t baz=3"]),
            pairs(&[("foo", "1"), ("bar", "2"), ("baz", "3")]),
        ),
        (
            "test.py L651",
            fields(&["foo=1\t \t,\t \tbar=2,\t \tbaz=3"]),
            pairs(&[("foo", "1"), ("bar", "2"), ("baz", "3")]),
        ),
        ("test.py L662", fields(&[" foo=1"]), pairs(&[("foo", "1")])),
        ("test.py L670", fields(&["\tfoo=1"]), pairs(&[("foo", "1")])),
        ("test.py L678", fields(&["foo=1 "]), pairs(&[("foo", "1")])),
        ("test.py L686", fields(&["foo=1\t"]), pairs(&[("foo", "1")])),
        (
            "test.py L694",
            fields(&["\t foo=1 \t"]),
            pairs(&[("foo", "1")]),
        ),
        // test_tracestate_key_illegal_characters, L701-723.
        ("test.py L708", fields(&["foo =1"]), None),
        ("test.py L714", fields(&["FOO=1"]), None),
        ("test.py L720", fields(&["foo.bar=1"]), None),
        // test_tracestate_key_illegal_vendor_format, L725-763.
        (
            "test.py L733",
            fields(&["foo@=1,bar=2"]),
            pairs(&[("foo@", "1"), ("bar", "2")]),
        ),
        ("test.py L742", fields(&["@foo=1,bar=2"]), None),
        (
            "test.py L748",
            fields(&["foo@@bar=1,bar=2"]),
            pairs(&[("foo@@bar", "1"), ("bar", "2")]),
        ),
        (
            "test.py L757",
            fields(&["foo@bar@baz=1,bar=2"]),
            pairs(&[("foo@bar@baz", "1"), ("bar", "2")]),
        ),
        ("test.py L778", with_32, Some(thirty_two)),
        ("test.py L789", with_33, None),
        // test_tracestate_key_length_limit, L794-849.
        (
            "test.py L803",
            vec!["foo=1".into(), format!("{}=1", "z".repeat(256))],
            pairs(&[("foo", "1"), (&"z".repeat(256), "1")]),
        ),
        (
            "test.py L813",
            vec!["foo=1".into(), format!("{}=1", "z".repeat(257))],
            None,
        ),
        // test_tracestate_value_illegal_characters, L851-868.
        ("test.py L858", fields(&["foo=bar=baz"]), None),
        ("test.py L864", fields(&["foo=,bar=3"]), None),
    ]
}

#[test]
fn tracestate_values_are_kept_or_ignored_as_the_specification_says() {
    for (source, fields, expected) in tracestates() {
        let parsed = TraceState::from_fields(fields.iter().map(String::as_str));
        match (&parsed, &expected) {
            (Ok(state), Some(members)) => {
                let got: Members = state
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                assert_eq!(&got, members, "{source}: {fields:?}");
                // Written and read again, the same list.
                assert_eq!(
                    state.to_string().parse::<TraceState>().as_ref(),
                    Ok(state),
                    "{source}"
                );
            }
            (Err(_), None) => {}
            _ => panic!("{source}: {fields:?} -> {parsed:?}, expected {expected:?}"),
        }
    }
}
