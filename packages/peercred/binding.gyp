{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["native/peercred.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
