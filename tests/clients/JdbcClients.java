import java.io.FileReader;
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

/**
 * pgJDBC against a PostgreSQL endpoint (the embedded one, or a server), with the
 * driver's defaults (prepareThreshold 5: server-side prepared statements from
 * the fifth execution on), as a BI tool would use it. Run with Java's
 * source launcher:
 *   java -cp /usr/share/java/postgresql.jar tests/clients/JdbcClients.java <scenario> <jdbc-url> ...
 * Prints one line of results per scenario; exits 1 on an unexpected failure.
 */
public class JdbcClients {
  public static void main(String[] args) throws Exception {
    String url = args[1];
    switch (args[0]) {
      case "like": like(url, Integer.parseInt(args[2]), Integer.parseInt(args[3]), args[4]); break;
      case "autocommit-off": autocommitOff(url, args[2], args[3]); break;
      case "copy": copy(url, args[2], args[3]); break;
      case "settings": settings(url); break;
      default: throw new IllegalArgumentException(args[0]);
    }
  }

  /** threads connections, each running like() with a bound query text `iterations` times; counts errors. */
  static void like(String url, int threads, int iterations, String index) throws Exception {
    AtomicInteger ok = new AtomicInteger();
    AtomicInteger errors = new AtomicInteger();
    List<String> messages = java.util.Collections.synchronizedList(new ArrayList<>());
    List<Thread> running = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      final int thread = t;
      Thread worker = new Thread(() -> {
        try (Connection connection = DriverManager.getConnection(url)) {
          try (PreparedStatement statement = connection.prepareStatement("SELECT id, score FROM superduper.like(?, ?, 3)")) {
            for (int i = 0; i < iterations; i++) {
              statement.setString(1, index);
              // Every few a new text, so that some calls need the model (a round trip to the host).
              statement.setString(2, i % 5 == 0 ? "cats and dogs " + thread + " " + i : "cats and dogs");
              try (ResultSet rows = statement.executeQuery()) {
                int n = 0;
                while (rows.next()) n++;
                if (n == 3) ok.incrementAndGet(); else { errors.incrementAndGet(); messages.add("rows: " + n); }
              } catch (Exception e) {
                errors.incrementAndGet();
                messages.add(e.getMessage());
              }
            }
          }
        } catch (Exception e) {
          errors.incrementAndGet();
          messages.add(e.getMessage());
        }
      });
      running.add(worker);
      worker.start();
    }
    for (Thread worker : running) worker.join();
    System.out.println("ok " + ok.get() + " errors " + errors.get() + (messages.isEmpty() ? "" : " first: " + messages.get(0)));
  }

  /** autocommit off: the driver sends BEGIN in the same batch as the first statement, an uncached like(). */
  static void autocommitOff(String url, String index, String query) throws Exception {
    try (Connection connection = DriverManager.getConnection(url)) {
      connection.setAutoCommit(false);
      try (PreparedStatement statement = connection.prepareStatement("SELECT id FROM superduper.like(?, ?, 2)")) {
        statement.setString(1, index);
        statement.setString(2, query);
        int n = 0;
        try (ResultSet rows = statement.executeQuery()) {
          while (rows.next()) n++;
        }
        try (Statement more = connection.createStatement(); ResultSet rows = more.executeQuery("SELECT count(*) FROM pg_catalog.pg_class")) {
          rows.next();
        }
        connection.commit();
        System.out.println("rows " + n);
      }
    }
  }

  /** CopyManager: a CSV file in, the table out. */
  static void copy(String url, String table, String file) throws Exception {
    try (Connection connection = DriverManager.getConnection(url)) {
      CopyManager copy = ((PGConnection) connection.unwrap(PGConnection.class)).getCopyAPI();
      long in = copy.copyIn("COPY " + table + " FROM STDIN (FORMAT csv)", new FileReader(file));
      StringWriter out = new StringWriter();
      long outRows = copy.copyOut("COPY (SELECT * FROM " + table + " ORDER BY 1) TO STDOUT (FORMAT csv)", out);
      System.out.println("in " + in + " out " + outRows + " " + out.toString().replace("\n", "|"));
    }
  }

  /** Two connections: what one SETs the other does not see. */
  static void settings(String url) throws Exception {
    try (Connection a = DriverManager.getConnection(url); Connection b = DriverManager.getConnection(url)) {
      try (Statement s = a.createStatement()) {
        s.execute("SET search_path = pg_catalog");
        s.execute("SET statement_timeout = '1234ms'");
      }
      System.out.println("a " + show(a) + " b " + show(b) + " a " + show(a));
    }
  }

  static String show(Connection c) throws Exception {
    try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT current_setting('search_path') || '/' || current_setting('statement_timeout')")) {
      r.next();
      return r.getString(1);
    }
  }
}
