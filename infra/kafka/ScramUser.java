// Creates or updates one SCRAM-SHA-512 user through a broker's admin API (what kafka-configs.sh
// --alter --entity-type users does, without the tools jar). Run as a single-file program:
//   java -cp '<kafka lib>/*' infra/kafka/ScramUser.java BOOTSTRAP USERNAME
// The password is read from the VE_SCRAM_PASSWORD environment variable, never from the command line.
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
  public static void main(String[] args) throws Exception {
    String password = System.getenv("VE_SCRAM_PASSWORD");
    if (args.length != 2 || password == null || password.isEmpty()) {
      System.err.println("usage: VE_SCRAM_PASSWORD=... java ScramUser.java BOOTSTRAP USERNAME");
      System.exit(2);
    }
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]))) {
      ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192);
      admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(args[1], info, password)))
          .all().get();
    }
  }
}
