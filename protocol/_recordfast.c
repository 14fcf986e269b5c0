/* Record decoding's fast path in C (docs/PROTOCOL.md §4, §5): speed only.
 *
 * decode_screened(data, chain_id, digest) returns the Record that protocol/records.py's
 * Record.decode would return for the commonest records (with whether its screened text
 * is plain, below), or None for anything else:
 * the Python then decodes it, and it alone says what is wrong. The records taken here
 * are service.offer (without terms), service.status, service.withdraw and
 * branch.profile; everything
 * else (other kinds, offers with terms, any value this file does not know to be
 * canonical or valid UTF-8, any rule broken) is None. So this file
 * must accept a subset of what the Python accepts and build equal objects from it; it
 * never raises for bad input. tests/test_recordfast.py checks both on valid records, on
 * every limit and on mutated bytes.
 *
 * The bytes are read in the shape the kind prescribes, each value in the one form
 * msgpack.packb gives it (the shortest; §4), so no generic tree of Python objects is
 * built and no re-encoding is needed to prove the encoding canonical. The checks are
 * those of the Python fast paths (records.py, schema.py, field_types.py). Of the
 * personal-data screen, decode_screened() also says whether the body's screened text is
 * plain (screening.plain), through _piiplain.c's pre-screen (given to setup() as a
 * capsule); the screen itself (pii.screen) stays in Python and runs after this.
 * Objects are built without calling __init__: the dataclasses are frozen and slotted,
 * and their slots are set through their member descriptors, as object.__setattr__
 * would (what __init__ does, without the Python frame).
 *
 * setup() takes the classes, their field names and the vocabularies from the Python,
 * which stays their one source; the numeric limits are repeated here, each with the
 * line it mirrors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#define MAX_RECORD_BYTES 8192        /* records.MAX_RECORD_BYTES */
#define RECORD_VERSION 1             /* records.RECORD_VERSION */
#define BRANCH_ID_SIZE 20            /* keys.BRANCH_ID_SIZE */
#define SIGNATURE_SIZE 64            /* keys.SIGNATURE_SIZE */
#define MAX_SEQ (1ULL << 53)         /* records.MAX_SEQ */
#define MAX_TIME_MS (1ULL << 53)     /* field_types.MAX_TIME_MS */
#define MAX_CHAIN_ID 64              /* records.py: len(cid) <= 64 */
#define MAX_SERVICE_ID 64            /* field_types._SERVICE_ID: [a-z0-9][a-z0-9._-]{0,63} */
#define MAX_HOURS 21                 /* field_types._weekly_hours_fast */
#define MAX_FEES 16                  /* schema.ServiceOffer: len(fees) <= 16 */
#define MAX_FEE_AMOUNT 1000000000000000ULL /* field_types.Fee._fast: 10**15 */
#define MAX_RISK 5
#define MAX_EQUIPMENT 32             /* schema.ServiceStatus: len(equipment) <= 32 */
#define MAX_WAIT 1440
#define MAX_LAT 90000000             /* schema.BranchProfile._parse: lat_micro in [-90e6, 90e6] */
#define MAX_LON 180000000            /* ... lon_micro in [-180e6, 180e6] */
#define MAX_PHONE 24                 /* ... contact_phone: max_len=24; field_types.public_number likewise */
#define MAX_URL 200                  /* ... contact_url: max_len=200 */
#define MAX_REGION 32                /* ... region: max_len=32 */
#define MAX_PUBLIC_NUMBERS 8         /* field_types.MAX_PUBLIC_NUMBERS */
#define MAX_VOCAB 16
#define PLAIN_CAPSULE "protocol._piiplain.plain_c" /* _piiplain.c's plain_c, given to setup() */

/* ------------------------------------------------------------ canonical msgpack reading
 * Each reader returns 1 when the next value has the expected type in its canonical
 * form (and fits in the input), else 0; it never sets a Python exception. */

typedef struct {
    const unsigned char *p, *end;
} Cur;

typedef struct {
    const char *s;
    Py_ssize_t n;
    int ascii; /* of a string: all of it ASCII */
} Span;

static int
need(Cur *c, Py_ssize_t n)
{
    return c->end - c->p >= n;
}

static uint64_t
be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A big-endian unsigned integer of ``width`` bytes, canonical only from ``min`` (below
 * it, a shorter form holds the value). */
static int
rd_be(Cur *c, int width, uint64_t min, uint64_t *v)
{
    if (!need(c, width))
        return 0;
    *v = be(c->p, width);
    c->p += width;
    return *v >= min;
}

#define NO_FORM 0x100 /* matches no byte: a family without an 8-bit form (arrays) */

/* The length in a str, bin or array header past its fix form (read by the caller): each
 * wider form only from where the form before it is full, as packb writes it — the 8-bit
 * one from ``min8`` (32 for str, whose fixstr holds less; 0 for bin), the 16-bit one from
 * ``min16`` (256, or 16 for arrays, whose fixarray holds less), the 32-bit one from 65536. */
static int
rd_len(Cur *c, unsigned f8, unsigned f16, unsigned f32, uint64_t min8, uint64_t min16, uint64_t *n)
{
    unsigned b;
    if (!need(c, 1))
        return 0;
    b = *c->p++;
    if (b == f8)
        return rd_be(c, 1, min8, n);
    if (b == f16)
        return rd_be(c, 2, min16, n);
    if (b == f32)
        return rd_be(c, 4, 65536, n);
    return 0;
}

/* fixarray 0x90-0x9f (< 16), array16 0xdc (>= 16), array32 0xdd (>= 65536) */
static int
rd_array(Cur *c, uint64_t *n)
{
    if (need(c, 1) && (c->p[0] & 0xf0) == 0x90) {
        *n = *c->p++ & 0x0f;
        return 1;
    }
    return rd_len(c, NO_FORM, 0xdc, 0xdd, 0, 16, n);
}

/* A non-negative integer: positive fixint, or uint8/16/32/64 only above the range of the
 * form before. (packb never writes a non-negative integer in a signed form.) */
static int
rd_uint(Cur *c, uint64_t *v)
{
    unsigned b;
    if (!need(c, 1))
        return 0;
    b = *c->p++;
    if (b <= 0x7f) {
        *v = b;
        return 1;
    }
    switch (b) {
    case 0xcc:
        return rd_be(c, 1, 0x80, v);
    case 0xcd:
        return rd_be(c, 2, 0x100, v);
    case 0xce:
        return rd_be(c, 4, 0x10000, v);
    case 0xcf:
        return rd_be(c, 8, 0x100000000ULL, v);
    }
    return 0;
}

/* An integer of either sign: a non-negative one as rd_uint reads it (which also bounds it
 * below 2**63 here), a negative one as negative fixint (-32..-1) or int8/16/32/64 only
 * below the range of the form before. */
static int
rd_int(Cur *c, int64_t *v)
{
    static const int64_t below[4] = {-32, -128, -32768, -2147483648LL}; /* each form: values < this */
    unsigned b;
    uint64_t u;
    if (!need(c, 1))
        return 0;
    b = c->p[0];
    if (b >= 0xe0) {
        *v = (int8_t)b;
        c->p++;
        return 1;
    }
    if (b >= 0xd0 && b <= 0xd3) {
        int k = b - 0xd0, width = 1 << k;
        c->p++;
        if (!rd_be(c, width, 0, &u))
            return 0;
        if (width < 8 && (u >> (8 * width - 1)))
            *v = (int64_t)u - ((int64_t)1 << (8 * width)); /* sign-extended */
        else
            *v = (int64_t)u; /* of 8 bytes: two's complement as it stands; of fewer: non-negative */
        return *v < below[k];
    }
    if (!rd_uint(c, &u) || u > (uint64_t)INT64_MAX)
        return 0;
    *v = (int64_t)u;
    return 1;
}

static int
rd_bool(Cur *c, int *v)
{
    if (!need(c, 1) || (c->p[0] != 0xc2 && c->p[0] != 0xc3))
        return 0;
    *v = *c->p++ == 0xc3;
    return 1;
}

/* A string's bytes: fixstr (< 32), str8 (>= 32), str16 (>= 256), str32 (>= 65536). */
static int
rd_str_bytes(Cur *c, Span *s)
{
    uint64_t n;
    if (!need(c, 1))
        return 0;
    if ((c->p[0] & 0xe0) == 0xa0) {
        n = *c->p++ & 0x1f;
    } else if (!rd_len(c, 0xd9, 0xda, 0xdb, 32, 256, &n)) {
        return 0;
    }
    if ((uint64_t)(c->end - c->p) < n)
        return 0;
    s->s = (const char *)c->p;
    s->n = (Py_ssize_t)n;
    s->ascii = 1;
    c->p += n;
    return 1;
}

/* An ASCII string (identifiers, enumerations, codes: anything else in them is refused
 * by the Python, which names the field). */
static int
rd_str(Cur *c, Span *s)
{
    if (!rd_str_bytes(c, s))
        return 0;
    for (Py_ssize_t i = 0; i < s->n; i++)
        if (s->s[i] & 0x80)
            return 0;
    return 1;
}

/* Bytes of exactly ``size``: bin8 (any length < 256), bin16 (>= 256). */
static int
rd_bin(Cur *c, Py_ssize_t size, Span *s)
{
    uint64_t n;
    if (!rd_len(c, 0xc4, 0xc5, 0xc6, 0, 256, &n) || n != (uint64_t)size || (uint64_t)(c->end - c->p) < n)
        return 0;
    s->s = (const char *)c->p;
    s->n = (Py_ssize_t)n;
    c->p += n;
    return 1;
}

/* ------------------------------------------------------------ what setup() gives */

typedef struct {
    Py_ssize_t n;
    PyObject *items[MAX_VOCAB]; /* the Python's own (interned) strings */
    const char *text[MAX_VOCAB];
    Py_ssize_t len[MAX_VOCAB];
} Vocab;

/* The classes and vocabularies, from setup(). */
enum { C_RECORD, C_OFFER, C_STATUS, C_EQUIPMENT, C_WITHDRAW, C_FEE, C_HOURS, C_PROFILE, N_CLASSES };
static const int FIELD_COUNT[N_CLASSES] = {10, 13, 4, 2, 2, 4, 3, 9};
static const char *const CLASS_NAME[N_CLASSES] = {
    "Record", "ServiceOffer", "ServiceStatus", "EquipmentStatus", "ServiceWithdraw", "Fee", "OpeningHours",
    "BranchProfile",
};
/* The kinds decoded here, in setup()'s order. */
enum { K_OFFER, K_STATUS, K_WITHDRAW, K_PROFILE, N_KINDS };
#define MAX_FIELDS 13

typedef struct {
    PyTypeObject *type;
    PyObject *slots[MAX_FIELDS]; /* member descriptors, in field order */
} Class;

enum { V_CATEGORY, V_CHANNEL, V_ACCESSIBILITY, V_OWNERSHIP, V_STATUS, V_FEE_BASIS, N_VOCABS };

static struct {
    int ready;
    Class cls[N_CLASSES];
    Vocab vocab[N_VOCABS];
    int risk_rated[MAX_VOCAB]; /* by category index: field_types.RISK_RATED_CATEGORIES */
    int free_basis;            /* index of "free" in FEE_BASES */
    int consigned;             /* index of "consigned" in OWNERSHIP */
    PyObject *kind[N_KINDS];
    PyObject *is_mobile; /* pii.is_mobile: whether a number in phone syntax is a mobile one (§5.3.5) */
    PyObject *plain_capsule;
    int (*plain)(const char *, size_t); /* protocol/_piiplain.c's plain_ascii on ASCII bytes (-1: no answer), or NULL */
    PyObject *empty_tuple;
    uint32_t (*refused)[2]; /* pii.REFUSED_RANGES: sorted, disjoint, inclusive */
    Py_ssize_t nrefused;
    char refused_ascii[128];
} S;

/* ------------------------------------------------------------ field rules */

/* field_types._clean_text: valid UTF-8 (as Python's strict decoder: no overlong form, no
 * surrogate, nothing past U+10FFFF), a length in [lo, hi] code points, and no code point
 * of pii.REFUSED_RANGES (its ASCII part is _CONTROL, [\x00-\x08\x0b-\x1f\x7f], which the
 * Python applies to ASCII text; tests/test_recordfast.py checks they agree). */
static int
refused(uint32_t cp)
{
    Py_ssize_t lo = 0, hi = S.nrefused;
    while (lo < hi) { /* the first range whose end is >= cp */
        Py_ssize_t mid = (lo + hi) / 2;
        if (S.refused[mid][1] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < S.nrefused && S.refused[lo][0] <= cp;
}

static int
rd_text(Cur *c, Py_ssize_t lo, Py_ssize_t hi, Span *s)
{
    const unsigned char *p, *end;
    Py_ssize_t count = 0;

    if (!rd_str_bytes(c, s))
        return 0;
    p = (const unsigned char *)s->s;
    end = p + s->n;
    while (p < end) {
        uint32_t cp = *p;
        int more;
        if (cp < 0x80) {
            if (S.refused_ascii[cp])
                return 0;
            p++;
            count++;
            continue;
        }
        s->ascii = 0;
        if (cp >= 0xc2 && cp <= 0xdf) {
            more = 1;
            cp &= 0x1f;
        } else if (cp >= 0xe0 && cp <= 0xef) {
            more = 2;
            cp &= 0x0f;
        } else if (cp >= 0xf0 && cp <= 0xf4) {
            more = 3;
            cp &= 0x07;
        } else {
            return 0; /* a continuation byte, an overlong lead (c0, c1) or past U+10FFFF (f5-ff) */
        }
        if (end - p <= more)
            return 0;
        for (int k = 1; k <= more; k++) {
            if ((p[k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[k] & 0x3f);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return 0; /* overlong, past U+10FFFF, or a surrogate */
        if (refused(cp))
            return 0;
        p += more + 1;
        count++;
    }
    return count >= lo && count <= hi;
}

/* field_types._SERVICE_ID.fullmatch with len <= 64: [a-z0-9][a-z0-9._-]{0,63}. */
static int
rd_service_id(Cur *c, Span *s)
{
    if (!rd_str(c, s) || s->n < 1 || s->n > MAX_SERVICE_ID)
        return 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        char ch = s->s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (i > 0 && (ch == '.' || ch == '_' || ch == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}


/* A string of the vocabulary: its index, or -1. */
static int
rd_enum(Cur *c, const Vocab *v)
{
    Span s;
    if (!rd_str(c, &s))
        return -1;
    for (Py_ssize_t i = 0; i < v->n; i++)
        if (v->len[i] == s.n && memcmp(v->text[i], s.s, s.n) == 0)
            return (int)i;
    return -1;
}

/* field_types._enum_set_fast: at least ``lo`` strings of the vocabulary, at most all of
 * them, in strictly increasing vocabulary order (so unique). */
static int
rd_enum_set(Cur *c, const Vocab *v, uint64_t lo, int *out, int *count)
{
    uint64_t n;
    int prev = -1;
    if (!rd_array(c, &n) || n < lo || n > (uint64_t)v->n)
        return 0;
    for (uint64_t i = 0; i < n; i++) {
        int k = rd_enum(c, v);
        if (k <= prev)
            return 0;
        out[i] = prev = k;
    }
    *count = (int)n;
    return 1;
}

/* ------------------------------------------------------------ the bodies, as C values */

typedef struct {
    int day, open, close;
} Hours;

typedef struct {
    Span label, currency;
    uint64_t amount;
    int basis;
} FeeC;

typedef struct {
    Span sid, title, description, issuer;
    int category, ownership, nchannels, naccess, nhours, nfees;
    uint64_t risk, effective;
    int channels[MAX_VOCAB], access[MAX_VOCAB];
    Hours hours[MAX_HOURS];
    FeeC fees[MAX_FEES];
} Offer;

typedef struct {
    Span sid;
    int status, nequipment;
    uint64_t wait;
    Span equipment[MAX_EQUIPMENT];
    int up[MAX_EQUIPMENT];
} Status;

typedef struct {
    Span sid, reason;
} Withdraw;

typedef struct {
    Span name, address, region, phone, url;
    int64_t lat, lon;
    int nhours, nnumbers;
    Hours hours[MAX_HOURS];
    Span numbers[MAX_PUBLIC_NUMBERS];
} Profile;


/* field_types._weekly_hours_fast: at most 21 intervals [day, open, close], sorted, not
 * overlapping. */
static int
rd_hours(Cur *c, Hours *hours, int *count)
{
    uint64_t n, v;
    int last_day = -1, last_close = 0;
    if (!rd_array(c, &n) || n > MAX_HOURS)
        return 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t d, op, cl;
        if (!rd_array(c, &v) || v != 3 || !rd_uint(c, &d) || !rd_uint(c, &op) || !rd_uint(c, &cl))
            return 0;
        if (d > 6 || !(op < cl) || cl > 1440)
            return 0;
        if ((int)d < last_day || ((int)d == last_day && (int)op < last_close))
            return 0;
        last_day = (int)d;
        last_close = (int)cl;
        hours[i] = (Hours){(int)d, (int)op, (int)cl};
    }
    *count = (int)n;
    return 1;
}

/* schema.ServiceOffer._parse's fast path (12 elements: no terms) and _check_rules. */
static int
rd_offer(Cur *c, Offer *o)
{
    uint64_t n, v;

    if (!rd_array(c, &n) || n != 12 || !rd_service_id(c, &o->sid) || (o->category = rd_enum(c, &S.vocab[V_CATEGORY])) < 0
        || !rd_text(c, 1, 120, &o->title) || !rd_text(c, 0, 2000, &o->description)
        || !rd_enum_set(c, &S.vocab[V_CHANNEL], 1, o->channels, &o->nchannels))
        return 0;
    if (!rd_hours(c, o->hours, &o->nhours))
        return 0;
    /* fees: field_types.Fee._fast */
    if (!rd_array(c, &n) || n > MAX_FEES)
        return 0;
    o->nfees = (int)n;
    for (int i = 0; i < o->nfees; i++) {
        FeeC *f = &o->fees[i];
        if (!rd_array(c, &v) || v != 4 || !rd_text(c, 1, 60, &f->label) || !rd_uint(c, &f->amount)
            || f->amount > MAX_FEE_AMOUNT || !rd_str(c, &f->currency) || f->currency.n != 3)
            return 0;
        for (int k = 0; k < 3; k++)
            if (f->currency.s[k] < 'A' || f->currency.s[k] > 'Z')
                return 0;
        if ((f->basis = rd_enum(c, &S.vocab[V_FEE_BASIS])) < 0 || (f->basis == S.free_basis && f->amount != 0))
            return 0;
    }
    if (!rd_uint(c, &o->risk) || o->risk > MAX_RISK || (o->ownership = rd_enum(c, &S.vocab[V_OWNERSHIP])) < 0
        || !rd_text(c, 0, 120, &o->issuer) || !rd_enum_set(c, &S.vocab[V_ACCESSIBILITY], 0, o->access, &o->naccess)
        || !rd_uint(c, &o->effective) || o->effective > MAX_TIME_MS)
        return 0;
    /* ServiceOffer._check_rules (without terms) */
    if (S.risk_rated[o->category] != (o->risk != 0))
        return 0;
    if ((o->ownership == S.consigned) != (o->issuer.n > 0))
        return 0;
    return 1;
}

/* schema.ServiceStatus._parse's fast path. */
static int
rd_status(Cur *c, Status *s)
{
    uint64_t n, v;
    if (!rd_array(c, &n) || n != 4 || !rd_service_id(c, &s->sid) || (s->status = rd_enum(c, &S.vocab[V_STATUS])) < 0
        || !rd_uint(c, &s->wait) || s->wait > MAX_WAIT || !rd_array(c, &n) || n > MAX_EQUIPMENT)
        return 0;
    s->nequipment = (int)n;
    for (int i = 0; i < s->nequipment; i++) {
        if (!rd_array(c, &v) || v != 2 || !rd_service_id(c, &s->equipment[i]) || !rd_bool(c, &s->up[i]))
            return 0;
        for (int k = 0; k < i; k++)
            if (s->equipment[k].n == s->equipment[i].n && memcmp(s->equipment[k].s, s->equipment[i].s, s->equipment[i].n) == 0)
                return 0; /* duplicate equipment id */
    }
    return 1;
}

/* schema.ServiceWithdraw._parse. */
static int
rd_withdraw(Cur *c, Withdraw *w)
{
    uint64_t n;
    return rd_array(c, &n) && n == 2 && rd_service_id(c, &w->sid) && rd_text(c, 0, 200, &w->reason);
}

static int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int
is_alnum(char ch) /* ASCII only, whatever the locale (isalnum is not) */
{
    return is_digit(ch) || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* field_types._REGION.fullmatch: [A-Z]{2}(?:-[A-Z0-9]{1,6}){0,3} */
static int
region_syntax(Span s)
{
    Py_ssize_t i = 2;
    if (s.n < 2 || s.s[0] < 'A' || s.s[0] > 'Z' || s.s[1] < 'A' || s.s[1] > 'Z')
        return 0;
    for (int part = 0; i < s.n; part++) {
        Py_ssize_t start;
        if (part == 3 || s.s[i] != '-')
            return 0;
        start = ++i;
        while (i < s.n && ((s.s[i] >= 'A' && s.s[i] <= 'Z') || is_digit(s.s[i])))
            i++;
        if (i - start < 1 || i - start > 6)
            return 0;
    }
    return 1;
}

/* field_types._PHONE.fullmatch: \+?[0-9][0-9 \-]{3,22}[0-9] (a '+' only first: it is in
 * no other class), for a string of at most MAX_PHONE characters (so at most 24 past the '+'). */
static int
phone_syntax(Span s)
{
    Py_ssize_t i = s.n > 0 && s.s[0] == '+';
    if (s.n - i < 5 || !is_digit(s.s[i]) || !is_digit(s.s[s.n - 1]))
        return 0;
    for (; i < s.n; i++)
        if (!is_digit(s.s[i]) && s.s[i] != ' ' && s.s[i] != '-')
            return 0;
    return 1;
}

/* field_types._URL.fullmatch:
 * https://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/\-]*)?
 * The host's class holds neither ':' nor '/', and the port's only digits, so each part
 * ends where the next begins: no backtracking. */
static int
url_syntax(Span s)
{
    static const char path_chars[] = "._~!$&'()*+,;=:@%/-";
    Py_ssize_t i = 8, start;
    if (s.n < 9 || memcmp(s.s, "https://", 8) != 0)
        return 0;
    for (start = i; i < s.n && (is_alnum(s.s[i]) || s.s[i] == '.' || s.s[i] == '-'); i++)
        ;
    if (i == start)
        return 0;
    if (i < s.n && s.s[i] == ':') {
        for (start = ++i; i < s.n && is_digit(s.s[i]); i++)
            ;
        if (i - start < 1 || i - start > 5)
            return 0;
    }
    if (i < s.n && s.s[i] != '/')
        return 0;
    for (; i < s.n; i++)
        if (!is_alnum(s.s[i]) && memchr(path_chars, s.s[i], sizeof path_chars - 1) == NULL)
            return 0;
    return 1;
}

/* schema.BranchProfile._parse, but for the rule that needs the Python (a contact or public
 * number may not be a mobile one: build_profile asks pii.is_mobile). 8 elements, or 9 with
 * the public numbers (field_types.public_number each: phone syntax, 5 to 15 digits). */
static int
rd_profile(Cur *c, Profile *p)
{
    uint64_t n, k;
    if (!rd_array(c, &n) || (n != 8 && n != 9) || !rd_text(c, 1, 120, &p->name) || !rd_text(c, 1, 200, &p->address)
        || !rd_str(c, &p->region) || p->region.n > MAX_REGION || !region_syntax(p->region)
        || !rd_int(c, &p->lat) || p->lat < -MAX_LAT || p->lat > MAX_LAT
        || !rd_int(c, &p->lon) || p->lon < -MAX_LON || p->lon > MAX_LON || !rd_hours(c, p->hours, &p->nhours)
        || !rd_str(c, &p->phone) || p->phone.n > MAX_PHONE || (p->phone.n > 0 && !phone_syntax(p->phone))
        || !rd_str(c, &p->url) || p->url.n > MAX_URL || (p->url.n > 0 && !url_syntax(p->url)))
        return 0;
    p->nnumbers = 0;
    if (n == 9) { /* present only when non-empty (one encoding) */
        if (!rd_array(c, &k) || k < 1 || k > MAX_PUBLIC_NUMBERS)
            return 0;
        for (int i = 0; i < (int)k; i++) {
            Span *s = &p->numbers[i];
            int digits = 0;
            if (!rd_str(c, s) || s->n > MAX_PHONE || !phone_syntax(*s))
                return 0;
            for (Py_ssize_t j = 0; j < s->n; j++)
                digits += is_digit(s->s[j]);
            if (digits < 5 || digits > 15)
                return 0;
            for (int m = 0; m < i; m++)
                if (p->numbers[m].n == s->n && memcmp(p->numbers[m].s, s->s, s->n) == 0)
                    return 0; /* duplicate number */
        }
        p->nnumbers = (int)k;
    }
    return 1;
}

/* ------------------------------------------------------------ building the objects
 * Only MemoryError can happen here: every value was checked above. */

static PyObject *
ascii_str(Span s)
{
    PyObject *u = PyUnicode_New(s.n, 127);
    if (u != NULL)
        memcpy(PyUnicode_1BYTE_DATA(u), s.s, s.n);
    return u;
}

/* A text field's string: decoded as UTF-8 (checked already) unless it is all ASCII. */
static PyObject *
text_str(Span s)
{
    return s.ascii ? ascii_str(s) : PyUnicode_DecodeUTF8(s.s, s.n, NULL);
}

static PyObject *
vocab_str(int vocab, int index)
{
    PyObject *u = S.vocab[vocab].items[index];
    Py_INCREF(u);
    return u;
}

/* An instance of class ``k`` with its fields set to ``values`` (references stolen, all
 * of them, even on failure; a NULL value means a failure while making it). */
static PyObject *
make(int k, PyObject **values)
{
    const Class *cls = &S.cls[k];
    int n = FIELD_COUNT[k], i;
    PyObject *obj = NULL;

    for (i = 0; i < n; i++)
        if (values[i] == NULL)
            goto done;
    obj = cls->type->tp_alloc(cls->type, 0);
    if (obj == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        if (Py_TYPE(cls->slots[i])->tp_descr_set(cls->slots[i], obj, values[i]) < 0) {
            Py_CLEAR(obj);
            goto done;
        }
    }
done:
    for (i = 0; i < n; i++)
        Py_XDECREF(values[i]);
    return obj;
}

static PyObject *
vocab_tuple(int vocab, const int *index, int n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < n; i++)
        PyTuple_SET_ITEM(t, i, vocab_str(vocab, index[i]));
    return t;
}

static PyObject *
build_hours(const Hours *hours, int n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *v[3] = {PyLong_FromLong(hours[i].day), PyLong_FromLong(hours[i].open), PyLong_FromLong(hours[i].close)};
        PyObject *h = make(C_HOURS, v);
        if (h == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, h);
    }
    return t;
}

static PyObject *
build_offer(const Offer *o)
{
    PyObject *hours = build_hours(o->hours, o->nhours), *fees = NULL;
    if (hours == NULL)
        return NULL;
    fees = PyTuple_New(o->nfees);
    if (fees == NULL)
        goto fail;
    for (int i = 0; i < o->nfees; i++) {
        const FeeC *f = &o->fees[i];
        PyObject *currency = ascii_str(f->currency);
        if (currency != NULL)
            PyUnicode_InternInPlace(&currency); /* as Fee._fast: intern(currency) */
        PyObject *v[4] = {text_str(f->label), PyLong_FromUnsignedLongLong(f->amount), currency,
                          vocab_str(V_FEE_BASIS, f->basis)};
        PyObject *fee = make(C_FEE, v);
        if (fee == NULL)
            goto fail;
        PyTuple_SET_ITEM(fees, i, fee);
    }
    PyObject *v[13] = {
        ascii_str(o->sid), vocab_str(V_CATEGORY, o->category), text_str(o->title), text_str(o->description),
        vocab_tuple(V_CHANNEL, o->channels, o->nchannels), hours, fees, PyLong_FromUnsignedLongLong(o->risk),
        vocab_str(V_OWNERSHIP, o->ownership), text_str(o->issuer), vocab_tuple(V_ACCESSIBILITY, o->access, o->naccess),
        PyLong_FromUnsignedLongLong(o->effective), Py_NewRef(Py_None),
    };
    return make(C_OFFER, v);
fail:
    Py_DECREF(hours);
    Py_XDECREF(fees);
    return NULL;
}

static PyObject *
build_status(const Status *s)
{
    PyObject *equipment = PyTuple_New(s->nequipment);
    if (equipment == NULL)
        return NULL;
    for (int i = 0; i < s->nequipment; i++) {
        PyObject *v[2] = {ascii_str(s->equipment[i]), Py_NewRef(s->up[i] ? Py_True : Py_False)};
        PyObject *e = make(C_EQUIPMENT, v);
        if (e == NULL) {
            Py_DECREF(equipment);
            return NULL;
        }
        PyTuple_SET_ITEM(equipment, i, e);
    }
    PyObject *v[4] = {ascii_str(s->sid), vocab_str(V_STATUS, s->status), PyLong_FromUnsignedLongLong(s->wait), equipment};
    return make(C_STATUS, v);
}

static PyObject *
build_withdraw(const Withdraw *w)
{
    PyObject *v[2] = {ascii_str(w->sid), text_str(w->reason)};
    return make(C_WITHDRAW, v);
}

/* A number's string, or NULL: with no exception set when it is a mobile one (pii.is_mobile;
 * the Python then refuses the record and names the field). */
static PyObject *
public_number_str(Span s)
{
    PyObject *number = ascii_str(s), *mobile;
    int is_mobile;
    if (number == NULL)
        return NULL;
    mobile = PyObject_CallOneArg(S.is_mobile, number);
    is_mobile = mobile == NULL ? -1 : PyObject_IsTrue(mobile);
    Py_XDECREF(mobile);
    if (is_mobile != 0)
        Py_CLEAR(number);
    return number;
}

/* The profile, or NULL: with no exception set when a number is a mobile one. */
static PyObject *
build_profile(const Profile *p)
{
    PyObject *phone = p->phone.n > 0 ? public_number_str(p->phone) : ascii_str(p->phone), *numbers;
    if (phone == NULL)
        return NULL;
    numbers = PyTuple_New(p->nnumbers);
    if (numbers == NULL) {
        Py_DECREF(phone);
        return NULL;
    }
    for (int i = 0; i < p->nnumbers; i++) {
        PyObject *number = public_number_str(p->numbers[i]);
        if (number == NULL) {
            Py_DECREF(phone);
            Py_DECREF(numbers);
            return NULL;
        }
        PyTuple_SET_ITEM(numbers, i, number);
    }
    PyObject *v[9] = {
        text_str(p->name), text_str(p->address), ascii_str(p->region), PyLong_FromLongLong(p->lat),
        PyLong_FromLongLong(p->lon), build_hours(p->hours, p->nhours), phone, ascii_str(p->url), numbers,
    };
    return make(C_PROFILE, v);
}

/* ------------------------------------------------------------ decode() */

static int
span_is(Span s, PyObject *str)
{
    Py_ssize_t n;
    const char *t = PyUnicode_AsUTF8AndSize(str, &n);
    if (t == NULL) { /* a chain id with lone surrogates: no UTF-8, so not this ASCII one */
        PyErr_Clear();
        return 0;
    }
    return n == s.n && memcmp(t, s.s, n) == 0;
}

/* screening.plain(body.screened_text()) for the body read, from its spans: 1 or 0, or -1
 * where this file leaves it to the Python (a profile, whose URL the text holds decoded;
 * no _piiplain). The text is the body's screened fields joined by U+001F, as each body
 * type's screened_text() joins them (schema.py; tests/test_recordfast.py compares). */
static int
screened_plain(const Span *parts, int n)
{
    char text[2 * MAX_RECORD_BYTES]; /* the fields are parts of one record: at most its size, and n - 1 separators */
    size_t len = 0;

    if (S.plain == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!parts[i].ascii)
            return 0; /* screening.plain: text that is not all ASCII is never plain */
        if (i > 0)
            text[len++] = '\x1f';
        memcpy(text + len, parts[i].s, (size_t)parts[i].n);
        len += (size_t)parts[i].n;
    }
    return S.plain(text, len);
}

/* The record, or None; and in ``*plain``, screened_plain() of its body. */
static PyObject *
decode_record(PyObject *const *args, Py_ssize_t nargs, int *plain)
{
    PyObject *data, *chain_id, *digest, *body, *hash;
    Cur c;
    uint64_t n, version, seq, time_ms;
    Span kind_s, cid, branch_id, signature;
    int kind, ok;
    union {
        Offer offer;
        Status status;
        Withdraw withdraw;
        Profile profile;
    } u;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode_screened(data, chain_id, digest)");
        return NULL;
    }
    if (!S.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_recordfast.setup() was not called");
        return NULL;
    }
    data = args[0];
    chain_id = args[1];
    digest = args[2];
    if (!PyBytes_CheckExact(data) || (chain_id != Py_None && !PyUnicode_CheckExact(chain_id))
        || (digest != Py_None && !PyBytes_CheckExact(digest)))
        Py_RETURN_NONE;
    c.p = (const unsigned char *)PyBytes_AS_STRING(data);
    c.end = c.p + PyBytes_GET_SIZE(data);
    if (PyBytes_GET_SIZE(data) == 0 || PyBytes_GET_SIZE(data) > MAX_RECORD_BYTES)
        Py_RETURN_NONE;

    /* [version=1, kind, chain_id, branch_id, seq, time_ms, body, signature] */
    if (!rd_array(&c, &n) || n != 8 || !rd_uint(&c, &version) || version != RECORD_VERSION || !rd_str(&c, &kind_s))
        Py_RETURN_NONE;
    for (kind = 0; kind < N_KINDS && !span_is(kind_s, S.kind[kind]); kind++)
        ;
    if (kind == N_KINDS)
        Py_RETURN_NONE;
    if (!rd_str(&c, &cid) || cid.n > MAX_CHAIN_ID || (chain_id != Py_None && !span_is(cid, chain_id))
        || !rd_bin(&c, BRANCH_ID_SIZE, &branch_id) || !rd_uint(&c, &seq) || seq < 1 || seq > MAX_SEQ
        || !rd_uint(&c, &time_ms) || time_ms > MAX_TIME_MS)
        Py_RETURN_NONE;
    switch (kind) {
    case K_OFFER:
        ok = rd_offer(&c, &u.offer);
        break;
    case K_STATUS:
        ok = rd_status(&c, &u.status);
        break;
    case K_WITHDRAW:
        ok = rd_withdraw(&c, &u.withdraw);
        break;
    default:
        ok = rd_profile(&c, &u.profile);
    }
    if (!ok || !rd_bin(&c, SIGNATURE_SIZE, &signature) || c.p != c.end)
        Py_RETURN_NONE;
    Span parts[MAX_EQUIPMENT + 1 > MAX_FEES + 4 ? MAX_EQUIPMENT + 1 : MAX_FEES + 4];
    int nparts = 0;
    switch (kind) {
    case K_OFFER: /* ServiceOffer.screened_text: service_id, title, description, the fees' labels, issuer */
        parts[nparts++] = u.offer.sid;
        parts[nparts++] = u.offer.title;
        parts[nparts++] = u.offer.description;
        for (int i = 0; i < u.offer.nfees; i++)
            parts[nparts++] = u.offer.fees[i].label;
        parts[nparts++] = u.offer.issuer;
        break;
    case K_STATUS: /* ServiceStatus.screened_text: service_id, the equipment ids */
        parts[nparts++] = u.status.sid;
        for (int i = 0; i < u.status.nequipment; i++)
            parts[nparts++] = u.status.equipment[i];
        break;
    case K_WITHDRAW: /* ServiceWithdraw.screened_text: service_id, reason */
        parts[nparts++] = u.withdraw.sid;
        parts[nparts++] = u.withdraw.reason;
        break;
    }
    *plain = nparts > 0 ? screened_plain(parts, nparts) : -1; /* a profile: none */

    switch (kind) {
    case K_OFFER:
        body = build_offer(&u.offer);
        break;
    case K_STATUS:
        body = build_status(&u.status);
        break;
    case K_WITHDRAW:
        body = build_withdraw(&u.withdraw);
        break;
    default:
        body = build_profile(&u.profile);
        if (body == NULL && !PyErr_Occurred())
            Py_RETURN_NONE; /* a mobile number: the Python refuses it, naming the field */
    }
    if (digest != Py_None && PyBytes_GET_SIZE(digest) > 0) { /* records.py: digest or sha256(data) */
        hash = Py_NewRef(digest);
    } else {
        unsigned char out[SHA256_DIGEST_LENGTH];
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
        SHA256_Final(out, &ctx);
        hash = PyBytes_FromStringAndSize((const char *)out, sizeof out);
    }
    /* Record(kind, chain_id, branch_id, seq, time_ms, body, signature, raw, hash, numbers=()) */
    PyObject *v[10] = {
        Py_NewRef(S.kind[kind]), chain_id != Py_None ? Py_NewRef(chain_id) : ascii_str(cid),
        PyBytes_FromStringAndSize(branch_id.s, branch_id.n), PyLong_FromUnsignedLongLong(seq),
        PyLong_FromUnsignedLongLong(time_ms), body, PyBytes_FromStringAndSize(signature.s, signature.n),
        Py_NewRef(data), hash, Py_NewRef(S.empty_tuple),
    };
    return make(C_RECORD, v);
}

static PyObject *
py_decode_screened(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int plain = -1;
    PyObject *record = decode_record(args, nargs, &plain), *flag;

    if (record == NULL || record == Py_None)
        return record;
    flag = plain < 0 ? Py_None : plain ? Py_True : Py_False;
    return Py_BuildValue("(NO)", record, flag);
}

/* ------------------------------------------------------------ setup() */

static int
set_vocab(Vocab *v, PyObject *seq, const char *name)
{
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) > MAX_VOCAB) {
        PyErr_Format(PyExc_TypeError, "vocabulary %s: a tuple of at most %d strings", name, MAX_VOCAB);
        return -1;
    }
    v->n = PyTuple_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < v->n; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i);
        if (!PyUnicode_CheckExact(item) || !PyUnicode_IS_ASCII(item)) {
            PyErr_Format(PyExc_TypeError, "vocabulary %s: ASCII strings only", name);
            return -1;
        }
        Py_INCREF(item);
        Py_XSETREF(v->items[i], item);
        v->text[i] = PyUnicode_AsUTF8AndSize(item, &v->len[i]);
    }
    return 0;
}

static int
index_of(const Vocab *v, const char *text)
{
    for (Py_ssize_t i = 0; i < v->n; i++)
        if (strcmp(v->text[i], text) == 0)
            return (int)i;
    return -1;
}

/* pii.REFUSED_RANGES: ((lo, hi), ...), inclusive, sorted and disjoint. */
static int
set_refused(PyObject *ranges)
{
    Py_ssize_t n = PyTuple_GET_SIZE(ranges);
    uint32_t (*table)[2] = PyMem_Malloc((n ? n : 1) * sizeof *table);
    long prev = -1;

    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long lo, hi;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(ranges, i), "ll", &lo, &hi) || lo <= prev || hi < lo || hi > 0x10ffff) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "refused ranges: (lo, hi) code points, sorted and disjoint");
            PyMem_Free(table);
            return -1;
        }
        table[i][0] = (uint32_t)lo;
        table[i][1] = (uint32_t)hi;
        prev = hi;
    }
    PyMem_Free(S.refused);
    S.refused = table;
    S.nrefused = n;
    for (uint32_t cp = 0; cp < 128; cp++)
        S.refused_ascii[cp] = (char)refused(cp);
    return 0;
}

static PyObject *
py_setup(PyObject *module, PyObject *args)
{
    PyObject *classes, *vocabs, *risk_rated, *kinds, *refused_ranges, *is_mobile, *plain = Py_None;
    static const char *const VOCAB_NAME[N_VOCABS] = {
        "CATEGORIES", "CHANNELS", "ACCESSIBILITY", "OWNERSHIP", "STATUSES", "FEE_BASES",
    };

    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O|O:setup", &PyTuple_Type, &classes, &PyTuple_Type, &vocabs, &PyTuple_Type,
                          &risk_rated, &PyTuple_Type, &kinds, &PyTuple_Type, &refused_ranges, &is_mobile, &plain))
        return NULL;
    S.ready = 0;
    if (PyTuple_GET_SIZE(classes) != N_CLASSES || PyTuple_GET_SIZE(vocabs) != N_VOCABS
        || PyTuple_GET_SIZE(kinds) != N_KINDS || !PyCallable_Check(is_mobile)) {
        PyErr_SetString(PyExc_TypeError, "setup((Record, ServiceOffer, ServiceStatus, EquipmentStatus, ServiceWithdraw, "
                                         "Fee, OpeningHours, BranchProfile) as (class, field names), 6 vocabularies, "
                                         "risk-rated, 4 kinds, refused ranges, is_mobile)");
        return NULL;
    }
    for (int k = 0; k < N_CLASSES; k++) {
        PyObject *pair = PyTuple_GET_ITEM(classes, k), *type, *names;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyType_Check(type = PyTuple_GET_ITEM(pair, 0))
            || !PyTuple_Check(names = PyTuple_GET_ITEM(pair, 1))) {
            PyErr_Format(PyExc_TypeError, "%s: expected (class, field names)", CLASS_NAME[k]);
            return NULL;
        }
        if (PyTuple_GET_SIZE(names) != FIELD_COUNT[k]) { /* the class changed: this file must follow it */
            PyErr_Format(PyExc_TypeError, "%s has %zd fields; _recordfast.c knows %d", CLASS_NAME[k],
                         PyTuple_GET_SIZE(names), FIELD_COUNT[k]);
            return NULL;
        }
        Py_INCREF(type);
        Py_XSETREF(S.cls[k].type, (PyTypeObject *)type);
        for (int i = 0; i < FIELD_COUNT[k]; i++) {
            PyObject *slot = PyObject_GetAttr(type, PyTuple_GET_ITEM(names, i));
            if (slot == NULL)
                return NULL;
            if (!Py_IS_TYPE(slot, &PyMemberDescr_Type)) { /* a slot of this very class, nothing else */
                Py_DECREF(slot);
                PyErr_Format(PyExc_TypeError, "%s.%U is not a slot", CLASS_NAME[k], PyTuple_GET_ITEM(names, i));
                return NULL;
            }
            Py_XSETREF(S.cls[k].slots[i], slot);
        }
    }
    for (int k = 0; k < N_VOCABS; k++)
        if (set_vocab(&S.vocab[k], PyTuple_GET_ITEM(vocabs, k), VOCAB_NAME[k]) < 0)
            return NULL;
    memset(S.risk_rated, 0, sizeof S.risk_rated);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(risk_rated); i++) {
        PyObject *item = PyTuple_GET_ITEM(risk_rated, i);
        int k = PyUnicode_Check(item) ? index_of(&S.vocab[V_CATEGORY], PyUnicode_AsUTF8(item)) : -1;
        if (k < 0) {
            PyErr_SetString(PyExc_TypeError, "a risk-rated category that is not a category");
            return NULL;
        }
        S.risk_rated[k] = 1;
    }
    S.free_basis = index_of(&S.vocab[V_FEE_BASIS], "free");
    S.consigned = index_of(&S.vocab[V_OWNERSHIP], "consigned");
    if (S.free_basis < 0 || S.consigned < 0) {
        PyErr_SetString(PyExc_TypeError, "FEE_BASES without 'free' or OWNERSHIP without 'consigned'");
        return NULL;
    }
    for (int k = 0; k < N_KINDS; k++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(kinds, k))) {
            PyErr_SetString(PyExc_TypeError, "kinds are strings");
            return NULL;
        }
        Py_XSETREF(S.kind[k], Py_NewRef(PyTuple_GET_ITEM(kinds, k)));
    }
    Py_XSETREF(S.is_mobile, Py_NewRef(is_mobile));
    if (plain == Py_None) {
        S.plain = NULL;
    } else if ((S.plain = (int (*)(const char *, size_t))PyCapsule_GetPointer(plain, PLAIN_CAPSULE)) == NULL) {
        return NULL; /* not _piiplain's capsule: PyCapsule_GetPointer says so */
    }
    Py_XSETREF(S.plain_capsule, Py_NewRef(plain)); /* keeps _piiplain's function alive */
    if (set_refused(refused_ranges) < 0)
        return NULL;
    if (S.empty_tuple == NULL && (S.empty_tuple = PyTuple_New(0)) == NULL)
        return NULL;
    S.ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", py_setup, METH_VARARGS,
     "setup(classes, vocabularies, risk_rated, kinds, refused_ranges, is_mobile): what decode builds and checks against "
     "(records.py calls it)."},
    {"decode_screened", (PyCFunction)(void (*)(void))py_decode_screened, METH_FASTCALL,
     "decode_screened(data, chain_id, digest) -> (Record, plain) or None: records.Record.decode for the "
     "commonest records, without the personal-data screen, and whether screening.plain(record.body.screened_text()) "
     "holds (True, False, or None: ask the Python); None means: let the Python decode it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_recordfast", "Record decoding's fast path in C (speed only; see records.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__recordfast(void)
{
    return PyModule_Create(&module);
}
