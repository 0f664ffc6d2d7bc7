# Sourced by ./fastdms, ./mvnw and .ci/run (POSIX sh): prints the home of a JDK 25, JAVA_HOME if it is one, else the
# first under /usr/lib/jvm. The build needs 25 (.mvn/jvm.config carries options older JVMs refuse), and the default
# java on these machines is 17.
find_jdk25() {
  for cand in "${JAVA_HOME:-}" /usr/lib/jvm/*25* /usr/lib/jvm/*-25-*; do
    [ -n "$cand" ] && [ -x "$cand/bin/java" ] || continue
    if "$cand/bin/java" -version 2>&1 | grep -q 'version "25'; then echo "$cand"; return 0; fi
  done
  return 1
}
