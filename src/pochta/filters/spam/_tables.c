/* Lookups in table.py's record tables, in C: a message's ~2,600 features are each one probe sequence in
   a table of tens of MB, so the time goes to cache misses, which one loop with prefetching overlaps
   (numpy's passes over separate key, row and value arrays measured several times slower). Reads only
   within the buffers it is given: the table's size is checked against its bits and width first. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SPREAD 0x9E3779B97F4A7C15ULL /* Fibonacci hashing, as table.py places the keys */
/* How many keys ahead a record is prefetched. Without it each search waits for its miss (the branch on the
   record's key is unpredictable, so the CPU does not run ahead into the next search): 60-90 ns per key. */
#define AHEAD 16

/* A key's values (or zeros, for `from` NULL) into `into`. The common widths are copied with sizes known
   at compile time: a memcpy or memset of a size known only at run time became rep movs / rep stos, whose
   start-up cost tens of cycles each for a few words (43 ns per key, where the search itself costs 2-3). */
static inline void put(double *into, const uint64_t *from, Py_ssize_t each) {
    static const double zeros[3];
    const void *source = from != NULL ? (const void *)from : (const void *)zeros;
    if (each == 1)
        memcpy(into, source, sizeof(double));
    else if (each == 3)
        memcpy(into, source, 3 * sizeof(double));
    else if (from != NULL)
        memcpy(into, from, (size_t)each * sizeof(double));
    else
        memset(into, 0, (size_t)each * sizeof(double));
}

/* find(records, width, bits, empty, keys, out): records are 2^bits or more records of `width` uint64 each
   (a key, then the float64 bits of its values), `empty` the key of a free record; a key's search starts
   at the record its top `bits` bits of key * SPREAD pick and goes on to its key or a free record, without
   wrapping around (the last record is free). For each of the uint64 `keys`, its values or zeros go to
   `out` (float64, width - 1 per key). */
static PyObject *find(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer records, keys, out;
    Py_ssize_t width;
    int bits;
    unsigned long long empty;
    if (!PyArg_ParseTuple(args, "y*niKy*w*", &records, &width, &bits, &empty, &keys, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = keys.len / (Py_ssize_t)sizeof(uint64_t);
    if (width < 2 || width > 64 || bits < 1 || bits > 40 ||
        records.len / (Py_ssize_t)sizeof(uint64_t) / width < ((Py_ssize_t)1 << bits) + 1 ||
        out.len / (Py_ssize_t)sizeof(double) / (width - 1) < count) {
        PyErr_SetString(PyExc_ValueError, "find(): the buffers do not match the table's size");
        goto done;
    }
    const uint64_t *table = records.buf, *wanted = keys.buf;
    double *values = out.buf;
    uint64_t total = (uint64_t)(records.len / (Py_ssize_t)sizeof(uint64_t) / width);
    Py_ssize_t each = width - 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i + AHEAD < count) /* the record a later key wants, on its way while this key is searched */
            __builtin_prefetch(table + ((wanted[i + AHEAD] * SPREAD) >> (64 - bits)) * (uint64_t)width);
        uint64_t key = wanted[i], slot = (key * SPREAD) >> (64 - bits);
        const uint64_t *from = NULL;
        for (; slot < total; slot++) {
            const uint64_t *record = table + slot * (uint64_t)width;
            if (record[0] == key) {
                from = record + 1;
                break;
            }
            if (record[0] == empty) break;
        }
        put(values + i * each, from, each);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&records);
    PyBuffer_Release(&keys);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"find", find, METH_VARARGS, "find(records, width, bits, empty, keys, out)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tables", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__tables(void) { return PyModule_Create(&module); }
