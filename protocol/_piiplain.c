/* The personal-data screen's fast paths in C (docs/PROTOCOL.md §5.3): speed only.
 *
 * plain_ascii(text) returns what protocol/pii.py's _plain_ascii_py returns for the same
 * ASCII text: True when the text provably holds nothing any detector of §5.3 could find
 * (so the screen can be skipped), False at any doubt. The conditions are the Python's,
 * one for one, in its order; the tables (character classes, letters, trigger words) come
 * from pii.py through setup(), so they have one source. tests/test_pii.py compares the
 * two on the personal-data corpus and on random text. Any text that is not an ASCII str
 * gets False (the Python calls this only for ASCII text). The same check on ASCII bytes is
 * given to protocol/_recordfast.c as the capsule ``plain_c``, so a record's screened
 * text is checked where it is decoded, without a Python string.
 *
 * fold_non_ascii(text) returns what pii.py's _fold_non_ascii_py returns (§5.3.3's folding
 * of text that is not all ASCII, before the words and digit words): FOLD_TABLE applied
 * as str.translate applies it, then runs of Chinese numerals made digits, then "艾特"
 * made "@", then "点" between a letter or digit and another made ".". The tables and the
 * characters come from pii.py through setup_fold(); tests/test_pii.py compares the two
 * on every code point and on random text.
 */
#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define STACK_TEXT 4096
#define MAX_TRIGGERS 64
#define MAX_TRIGGER_LEN 32

static struct {
    int ready;
    unsigned char classes[256]; /* pii._CLASS_BYTES: d o s p @ w, and a space for the rest */
    unsigned char letters[256]; /* pii._LETTERS_BYTES: a-z (A-Z lowered), a space for the rest */
    int ntriggers;
    char trigger[MAX_TRIGGERS][MAX_TRIGGER_LEN + 1];
    size_t trigger_len[MAX_TRIGGERS];
    uint64_t with[26][MAX_TRIGGER_LEN + 1]; /* by first letter and length: the trigger words that have them */
} S;

#define MAX_NUMERALS 64

static struct {
    int ready;
    Py_ssize_t n;
    Py_UCS4 *key;   /* FOLD_TABLE's keys, sorted */
    Py_UCS4 *value; /* what each becomes; NONE: deleted */
    Py_UCS4 ascii[128];
    int nnumerals;
    Py_UCS4 numeral[MAX_NUMERALS], numeral_digit[MAX_NUMERALS]; /* CJK_DIGITS: each a one-character digit */
    Py_UCS4 at_first, at_second, at; /* "艾特" -> "@" */
    Py_UCS4 dot_word, dot;           /* "点" -> "." between [a-z0-9] and [a-z0-9] */
} F;
#define NONE 0xffffffffu

static int
has(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

static int
is_lower_or_digit(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static int
is_alpha(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* pii._LONG_RUN_W.search(c), r"d[dswp]{6,}d": within a run of d/s/w/p, two d at least
 * seven apart. */
static int
long_run(const char *c, size_t n)
{
    size_t i = 0;
    while (i < n) {
        long first = -1, last = -1;
        while (i < n && (c[i] == 'd' || c[i] == 's' || c[i] == 'w' || c[i] == 'p')) {
            if (c[i] == 'd') {
                if (first < 0)
                    first = (long)i;
                last = (long)i;
            }
            i++;
        }
        if (first >= 0 && last - first >= 7)
            return 1;
        i++;
    }
    return 0;
}

/* pii._nino_half: "ddddddw " in the classes, then a-d (either case) alone. */
static int
nino_half(const unsigned char *b, const char *c, size_t n)
{
    const char *p = c;
    while ((p = memmem(p, n - (p - c), "ddddddw ", 8)) != NULL) {
        size_t i = p - c;
        unsigned char ch = b[i + 7];
        if (((ch >= 'a' && ch <= 'd') || (ch >= 'A' && ch <= 'D')) && !(i + 8 < n && (is_alpha(b[i + 8]) || (b[i + 8] >= '0' && b[i + 8] <= '9'))))
            return 1;
        p++;
    }
    return 0;
}

/* pii._GLUED_CAPS_BYTES: [a-z0-9](?:AT[a-z0-9]|DOT[a-z]) */
static int
glued_caps(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (!is_lower_or_digit(b[i]))
            continue;
        if (b[i + 1] == 'A' && b[i + 2] == 'T' && is_lower_or_digit(b[i + 3]))
            return 1;
        if (i + 4 < n && b[i + 1] == 'D' && b[i + 2] == 'O' && b[i + 3] == 'T' && b[i + 4] >= 'a' && b[i + 4] <= 'z')
            return 1;
    }
    return 0;
}

/* pii._DOTTED_DOMAIN_BYTES: \.[a-zA-Z][a-zA-Z] */
static int
dotted_domain(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (b[i] == '.' && is_alpha(b[i + 1]) && is_alpha(b[i + 2]))
            return 1;
    return 0;
}

/* "dot" in text.lower() */
static int
has_dot_word(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if ((b[i] | 0x20) == 'd' && (b[i + 1] | 0x20) == 'o' && (b[i + 2] | 0x20) == 't')
            return 1;
    return 0;
}

/* The words of b.translate(_LETTERS_BYTES).split(): sets *at when "at" is one; returns 1
 * when one is a trigger word. */
static int
words(const unsigned char *b, size_t n, int *at)
{
    size_t i = 0;
    *at = 0;
    while (i < n) {
        char word[MAX_TRIGGER_LEN + 1];
        size_t len = 0, start;
        while (i < n && S.letters[b[i]] == ' ')
            i++;
        start = i;
        while (i < n && S.letters[b[i]] != ' ') {
            if (len < MAX_TRIGGER_LEN)
                word[len] = (char)S.letters[b[i]];
            len++;
            i++;
        }
        if (i == start || len > MAX_TRIGGER_LEN)
            continue;
        if (len == 2 && word[0] == 'a' && word[1] == 't')
            *at = 1;
        for (uint64_t m = S.with[word[0] - 'a'][len]; m; m &= m - 1)
            if (memcmp(S.trigger[__builtin_ctzll(m)], word, len) == 0)
                return 1;
    }
    return 0;
}

static int
plain(const unsigned char *b, size_t n, char *c)
{
    size_t digits = 0;
    int at, caps = 0, p = 0;

    /* One pass for what most text is decided by: "@" in c, "do"/"od" in c, the IBAN
     * hints "  dd", " odd", "o dd", "oodd" (two of " o" then "dd"; they imply
     * digits >= 2), "p" in c, and "AT"/"DOT" in the text. */
    for (size_t i = 0; i < n; i++) {
        char ch = (char)S.classes[b[i]];
        c[i] = ch;
        if (ch == '@')
            return 0;
        if (ch == 'd') {
            digits++;
            if (i > 0 && c[i - 1] == 'o')
                return 0;
            if (i >= 3 && c[i - 1] == 'd' && (c[i - 2] == ' ' || c[i - 2] == 'o') && (c[i - 3] == ' ' || c[i - 3] == 'o'))
                return 0;
        } else if (ch == 'o') {
            if (i > 0 && c[i - 1] == 'd')
                return 0;
        } else if (ch == 'p') {
            p = 1;
        }
        if (b[i] == 'T' && i > 0 && (b[i - 1] == 'A' || (i > 1 && b[i - 1] == 'O' && b[i - 2] == 'D')))
            caps = 1;
    }
    if (digits >= 6
        && ((has(c, n, "dddddd")
             && (has(c, n, "ddddddd") || has(c, n, "ddddddp") || has(c, n, "dddddd ") || has(c, n, "ddddddsp")
                 || has(c, n, "ddddddwp") || has(c, n, "ddddddwd") || nino_half(b, c, n)))
            || has(c, n, "sddsddsdds") || has(c, n, "wddwddwddw") || (digits >= 8 && long_run(c, n))))
        return 0;
    if (caps && glued_caps(b, n))
        return 0;
    if (words(b, n, &at))
        return 0;
    if (at && (has_dot_word(b, n) || p || memchr(b, '[', n) || memchr(b, '{', n) || memchr(b, '<', n) || dotted_domain(b, n)))
        return 0;
    return 1;
}

/* plain_ascii on ``n`` bytes of ASCII text, for protocol/_recordfast.c (through the capsule
 * "protocol._piiplain.plain_c"): 1 or 0, or -1 for no answer (not set up, no memory). */
static int
plain_c(const char *text, size_t n)
{
    char stack[STACK_TEXT], *c = stack;
    int result;

    if (!S.ready)
        return -1;
    if (n > STACK_TEXT && (c = PyMem_Malloc(n)) == NULL)
        return -1;
    result = plain((const unsigned char *)text, n, c);
    if (c != stack)
        PyMem_Free(c);
    return result;
}

static PyObject *
py_plain_ascii(PyObject *module, PyObject *text)
{
    int result;

    if (!S.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_piiplain.setup() was not called");
        return NULL;
    }
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text))
        Py_RETURN_FALSE;
    result = plain_c((const char *)PyUnicode_1BYTE_DATA(text), (size_t)PyUnicode_GET_LENGTH(text));
    return result < 0 ? PyErr_NoMemory() : PyBool_FromLong(result); /* set up: only memory can fail */
}

/* ------------------------------------------------------------ folding (§5.3.3) */

/* What FOLD_TABLE makes of ``cp`` (NONE: deleted), by binary search. */
static Py_UCS4
table_lookup(Py_UCS4 cp)
{
    Py_ssize_t lo = 0, hi = F.n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (F.key[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < F.n && F.key[lo] == cp ? F.value[lo] : cp;
}

static Py_UCS4
fold_char(Py_UCS4 cp)
{
    return cp < 128 ? F.ascii[cp] : table_lookup(cp);
}

static int
numeral(Py_UCS4 cp) /* its index in CJK_DIGITS, or -1 */
{
    for (int k = 0; k < F.nnumerals; k++)
        if (F.numeral[k] == cp)
            return k;
    return -1;
}

static int
ascii_digit(Py_UCS4 cp)
{
    return cp >= '0' && cp <= '9';
}

static int
lower_or_digit(Py_UCS4 cp)
{
    return ascii_digit(cp) || (cp >= 'a' && cp <= 'z');
}

static PyObject *
py_fold_non_ascii(PyObject *module, PyObject *text)
{
    Py_ssize_t n, m = 0, i, j, w;
    Py_UCS4 *b;
    const void *data;
    int kind;
    PyObject *out;

    if (!F.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_piiplain.setup_fold() was not called");
        return NULL;
    }
    if (!PyUnicode_CheckExact(text)) {
        PyErr_SetString(PyExc_TypeError, "fold_non_ascii(str)");
        return NULL;
    }
    n = PyUnicode_GET_LENGTH(text);
    kind = PyUnicode_KIND(text);
    data = PyUnicode_DATA(text);
    if ((b = PyMem_Malloc((n ? n : 1) * sizeof *b)) == NULL)
        return PyErr_NoMemory();
    /* text.translate(FOLD_TABLE): one character for one, or none */
    for (i = 0; i < n; i++) {
        Py_UCS4 v = fold_char(PyUnicode_READ(kind, data, i));
        if (v != NONE)
            b[m++] = v;
    }
    /* _CJK_FOLD.sub: a run of two numerals or more, or one between two ASCII digits,
     * made digits. A regex scanning left to right takes each run whole from its first
     * numeral (runs are maximal), so a lone numeral is a run of one; the characters
     * around a run are not numerals and are not changed, so this can work in place. */
    for (i = 0; i < m; i = j) {
        if (numeral(b[i]) < 0) {
            j = i + 1;
            continue;
        }
        for (j = i; j < m && numeral(b[j]) >= 0; j++)
            ;
        if (j - i >= 2 || (i > 0 && ascii_digit(b[i - 1]) && j < m && ascii_digit(b[j])))
            for (Py_ssize_t k = i; k < j; k++)
                b[k] = F.numeral_digit[numeral(b[k])];
    }
    /* str.replace("艾特", "@"), left to right */
    for (i = w = 0; i < m; i++) {
        if (b[i] == F.at_first && i + 1 < m && b[i + 1] == F.at_second) {
            b[w++] = F.at;
            i++;
        } else {
            b[w++] = b[i];
        }
    }
    m = w;
    /* _CJK_DOT.sub: "点" between [a-z0-9] and [a-z0-9]; neither it nor "." is one of those,
     * so what is replaced never changes what its neighbours see */
    for (i = 1; i + 1 < m; i++)
        if (b[i] == F.dot_word && lower_or_digit(b[i - 1]) && lower_or_digit(b[i + 1]))
            b[i] = F.dot;
    out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, b, m);
    PyMem_Free(b);
    return out;
}

static int
one_char(PyObject *s, Py_UCS4 *cp)
{
    if (!PyUnicode_Check(s) || PyUnicode_GET_LENGTH(s) != 1)
        return 0;
    *cp = PyUnicode_READ_CHAR(s, 0);
    return 1;
}

/* setup_fold(FOLD_TABLE, CJK_DIGITS, ("艾特", "@"), ("点", ".")) */
static PyObject *
py_setup_fold(PyObject *module, PyObject *args)
{
    PyObject *table, *numerals, *at_pair, *dot_pair, *items = NULL, *k, *v;
    Py_ssize_t n, pos = 0;
    Py_UCS4 *key = NULL, *value = NULL;

    if (!PyArg_ParseTuple(args, "O!O!O!O!:setup_fold", &PyDict_Type, &table, &PyDict_Type, &numerals, &PyTuple_Type,
                          &at_pair, &PyTuple_Type, &dot_pair))
        return NULL;
    F.ready = 0;
    n = PyDict_GET_SIZE(table);
    key = PyMem_Malloc((n ? n : 1) * sizeof *key);
    value = PyMem_Malloc((n ? n : 1) * sizeof *value);
    if (key == NULL || value == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if ((items = PyList_New(0)) == NULL)
        goto fail;
    while (PyDict_Next(table, &pos, &k, &v)) { /* (code point, value), sorted below */
        PyObject *pair = Py_BuildValue("(OO)", k, v);
        if (pair == NULL || PyList_Append(items, pair) < 0) {
            Py_XDECREF(pair);
            goto fail;
        }
        Py_DECREF(pair);
    }
    if (PyList_Sort(items) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        long cp = PyLong_AsLong(PyTuple_GET_ITEM(pair, 0));
        PyObject *to = PyTuple_GET_ITEM(pair, 1);
        if (cp < 0 || cp > 0x10ffff || (to != Py_None && !one_char(to, &value[i]))) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "the fold table maps code points to one character or None");
            goto fail;
        }
        key[i] = (Py_UCS4)cp;
        if (to == Py_None)
            value[i] = NONE;
    }
    PyMem_Free(F.key);
    PyMem_Free(F.value);
    F.key = key;
    F.value = value;
    F.n = n;
    key = value = NULL;
    for (Py_UCS4 cp = 0; cp < 128; cp++)
        F.ascii[cp] = table_lookup(cp);
    if (PyDict_GET_SIZE(numerals) > MAX_NUMERALS) {
        PyErr_SetString(PyExc_TypeError, "at most 64 numerals");
        goto fail;
    }
    F.nnumerals = 0;
    pos = 0;
    while (PyDict_Next(numerals, &pos, &k, &v)) {
        if (!one_char(k, &F.numeral[F.nnumerals]) || !one_char(v, &F.numeral_digit[F.nnumerals])) {
            PyErr_SetString(PyExc_TypeError, "numerals map one character to one digit");
            goto fail;
        }
        F.nnumerals++;
    }
    if (PyTuple_GET_SIZE(at_pair) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(at_pair, 0))
        || PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(at_pair, 0)) != 2 || !one_char(PyTuple_GET_ITEM(at_pair, 1), &F.at)
        || PyTuple_GET_SIZE(dot_pair) != 2 || !one_char(PyTuple_GET_ITEM(dot_pair, 0), &F.dot_word)
        || !one_char(PyTuple_GET_ITEM(dot_pair, 1), &F.dot)) {
        PyErr_SetString(PyExc_TypeError, "setup_fold(table, numerals, (two characters, one), (one, one))");
        goto fail;
    }
    F.at_first = PyUnicode_READ_CHAR(PyTuple_GET_ITEM(at_pair, 0), 0);
    F.at_second = PyUnicode_READ_CHAR(PyTuple_GET_ITEM(at_pair, 0), 1);
    Py_DECREF(items);
    F.ready = 1;
    Py_RETURN_NONE;
fail:
    Py_XDECREF(items);
    PyMem_Free(key);
    PyMem_Free(value);
    return NULL;
}

static PyObject *
py_setup(PyObject *module, PyObject *args)
{
    Py_buffer classes, letters;
    PyObject *triggers;
    int ok = 0;

    if (!PyArg_ParseTuple(args, "y*y*O!:setup", &classes, &letters, &PyTuple_Type, &triggers))
        return NULL;
    S.ready = 0;
    if (classes.len != 256 || letters.len != 256 || PyTuple_GET_SIZE(triggers) > MAX_TRIGGERS) {
        PyErr_SetString(PyExc_TypeError, "setup(256 class bytes, 256 letter bytes, at most 64 trigger words)");
        goto done;
    }
    memcpy(S.classes, classes.buf, 256);
    memcpy(S.letters, letters.buf, 256);
    for (int k = 0; k < 256; k++)
        if (S.letters[k] != ' ' && (S.letters[k] < 'a' || S.letters[k] > 'z')) {
            PyErr_SetString(PyExc_TypeError, "the letters table maps to a-z or a space");
            goto done;
        }
    S.ntriggers = (int)PyTuple_GET_SIZE(triggers);
    for (int k = 0; k < S.ntriggers; k++) {
        PyObject *w = PyTuple_GET_ITEM(triggers, k);
        if (!PyBytes_Check(w) || PyBytes_GET_SIZE(w) < 1 || PyBytes_GET_SIZE(w) > MAX_TRIGGER_LEN
            || strspn(PyBytes_AS_STRING(w), "abcdefghijklmnopqrstuvwxyz") != (size_t)PyBytes_GET_SIZE(w)) {
            PyErr_SetString(PyExc_TypeError, "a trigger word is 1 to 32 letters a-z");
            goto done;
        }
        S.trigger_len[k] = (size_t)PyBytes_GET_SIZE(w);
        memcpy(S.trigger[k], PyBytes_AS_STRING(w), S.trigger_len[k]);
    }
    memset(S.with, 0, sizeof S.with);
    for (int k = 0; k < S.ntriggers; k++)
        S.with[S.trigger[k][0] - 'a'][S.trigger_len[k]] |= 1ULL << k;
    S.ready = 1;
    ok = 1;
done:
    PyBuffer_Release(&classes);
    PyBuffer_Release(&letters);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", py_setup, METH_VARARGS, "setup(classes, letters, trigger_words): pii.py's tables (pii.py calls it)."},
    {"plain_ascii", py_plain_ascii, METH_O, "plain_ascii(text) -> bool: pii._plain_ascii_py, for ASCII text."},
    {"setup_fold", py_setup_fold, METH_VARARGS,
     "setup_fold(fold_table, numerals, (\"艾特\", \"@\"), (\"点\", \".\")): pii.py's folding tables (pii.py calls it)."},
    {"fold_non_ascii", py_fold_non_ascii, METH_O, "fold_non_ascii(text) -> str: pii._fold_non_ascii_py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_piiplain", "The personal-data screen's fast paths in C (speed only; see pii.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__piiplain(void)
{
    PyObject *m = PyModule_Create(&module), *capsule;

    if (m == NULL)
        return NULL;
    capsule = PyCapsule_New((void *)plain_c, "protocol._piiplain.plain_c", NULL);
    if (capsule == NULL || PyModule_AddObject(m, "plain_c", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
